"""The database's documentation as markdown, from the live schema's comments (what
``docs/schema.md`` holds: `scripts/gen_docs.py` writes it, a test fails when it drifts)."""

from __future__ import annotations

_INTRO = """\
# The auditor database

`audit trace` writes everything it reads and computes into one DuckDB file: `./auditor.duckdb`,
or the path in `AUDITOR_DB`, or `--db PATH`. Query it with `audit query "SQL"` (read-only), from
the `duckdb` CLI, or from Python (`duckdb.connect(path, read_only=True)`); `audit export DIR`
writes every table and view to Parquet.

The schema is versioned by migrations (`auditor/store/migrations.py`); the names of those
applied are in `_migrations`. This page is generated from the live schema's comments by
`make docs` (`python scripts/gen_docs.py`); do not edit it by hand.

Keys: runs are identified by `run_id`; what a run computed for a trajectory by
(`run_id`, `trajectory_id`); actions by (`trajectory_id`, `action_id`); attributions by
(`run_id`, `trajectory_id`, `action_id`, `hop`, `segment_id`); an action's explained arguments by
(`run_id`, `trajectory_id`, `action_id`, `argument`), their drivers by that and `segment_id`.

## Example: which tool outputs drove the send_email action?

```sql
SELECT trajectory_id, action_id, driver_tool, driver_label, round(share, 3) AS share
FROM action_drivers
WHERE tool_name = 'send_email' AND driver_kind = 'tool_output'
ORDER BY trajectory_id, share DESC;
```

The same question without the view:

```sql
SELECT x.action_id, s.tool_name AS driver_tool, s.label, t.share
FROM attributions t
JOIN actions x USING (trajectory_id, action_id)
JOIN segments s USING (run_id, trajectory_id, segment_id)
WHERE x.tool_name = 'send_email' AND t.kind = 'tool_output' AND t.hop = 0
ORDER BY t.share DESC;
```

Actions the user's instructions do not support, as `audit check` judged them: `audit trace` and
`audit check --db` record the check's verdict on every action in `action_verdicts` (judged support,
the decisive argument it rests on, the whole call's support, threshold, status, rules, the policy),
and `unsupported_actions` lists the failed ones. The support is taken from the action's least
supported *decisive* argument (one that says who receives its effect, such as `to` or
`recipient*`) or, for an action without one, from the whole call (`argument` is then NULL); it is
the number `audit trace`, `audit show`, the report and `audit check --json` print for the action:

```sql
SELECT action_id, action_summary, argument, round(support, 2) AS support,
       round(action_support, 2) AS action_support, top_label, policy_source
FROM unsupported_actions ORDER BY support;
```

Every verdict, passed and ignored ones too, with the policy that judged it:

```sql
SELECT action_id, status, argument, round(support, 2) AS support, threshold, rules, policy_source
FROM action_verdicts ORDER BY run_id, trajectory_id, action_id;
```

Audits recorded before verdicts were (migration `m005_action_verdicts`) were judged once by the
rule the view then applied in SQL, under the `unsupported_*` settings of the time, which were
removed: their `policy_source` is `store settings (m005 backfill)`. An audit recorded without
verdicts (`Store.record_audit(audit)` from Python) is in no verdict view; record it with
`verdicts=check_audit(audit, policy).verdicts, policy=policy`.

The same question per argument: which arguments (a recipient, a path, a command) did data rather
than the user choose? An action can rightly be driven by the file it summarises while its
recipient must come from the user:

```sql
SELECT action_id, argument, argument_value, round(support, 2) AS support, top_label
FROM argument_support ORDER BY support, action_id, argument_position;
```

`audit query` never writes.
"""


def render_schema_doc() -> str:
    """Markdown for the schema of a freshly migrated database."""
    from auditor.store.store import Store

    with Store(":memory:") as store:
        con = store.connection
        tables = con.execute(
            "SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'main' "
            "AND NOT starts_with(table_name, '_') ORDER BY table_oid").fetchall()
        views = con.execute(
            "SELECT view_name, comment FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal "
            "ORDER BY view_oid").fetchall()
        settings = con.execute("SELECT key, value, description FROM settings ORDER BY key").fetchall()

        def columns(name: str) -> list[tuple[str, str, str]]:
            return con.execute(
                "SELECT column_name, data_type, coalesce(comment, '') FROM duckdb_columns() "
                "WHERE table_name = ? AND schema_name = 'main' ORDER BY column_index", [name]).fetchall()

        def pk(name: str) -> set[str]:
            rows = con.execute(
                "SELECT constraint_column_names FROM duckdb_constraints() WHERE table_name = ? "
                "AND constraint_type = 'PRIMARY KEY'", [name]).fetchall()
            return {c for r in rows for c in r[0]}

        out = [_INTRO]
        out.append("## Tables\n")
        for name, comment in tables:
            out.append(f"### `{name}`\n\n{_cell(comment or '')}\n")
            keys = pk(name)
            out.append("| column | type | description |\n|---|---|---|")
            for col, typ, doc in columns(name):
                key = " (key)" if col in keys else ""
                out.append(f"| `{col}`{key} | {typ} | {_cell(doc)} |")
            out.append("")
        out.append("## Views\n")
        for name, comment in views:
            out.append(f"### `{name}`\n\n{_cell(comment or '')}\n")
            out.append("| column | type | description |\n|---|---|---|")
            for col, typ, doc in columns(name):
                out.append(f"| `{col}` | {typ} | {_cell(doc)} |")
            out.append("")
        out.append("## Settings (defaults)\n")
        out.append("| key | default | description |\n|---|---|---|")
        for key, value, desc in settings:
            out.append(f"| `{key}` | `{value}` | {_cell(desc or '')} |")
        out.append("")
    return "\n".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
