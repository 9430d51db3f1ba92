"""The DuckDB schema, as an ordered list of migrations.

Each migration is a function decorated with ``@migration``; they run in the order they are
defined, each in its own transaction, and the names of the applied ones are recorded in
``_migrations``. ``migrate()`` runs on every writable open. Never edit a migration that has
shipped: add a new one (``m003_…``) that alters the schema.

Every table, view and column carries a ``COMMENT``: ``docs/schema.md`` is generated from those
comments on the live schema (`auditor.store.schema_doc`), so the docs cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

Migration = Callable[["duckdb.DuckDBPyConnection"], None]

MIGRATIONS: list[Migration] = []

#: The setting `unsupported_actions` reads its threshold from (row of the `settings` table).
UNSUPPORTED_THRESHOLD_KEY = "unsupported_threshold"
DEFAULT_UNSUPPORTED_THRESHOLD = 0.27  # = auditor.check.defaults.DEFAULT_THRESHOLD (a test keeps them equal)
#: The threshold m001/m002 shipped with (whole-call support). m003 moves an untouched setting to
#: the current default; a value the user set is kept.
_M001_UNSUPPORTED_THRESHOLD = 0.25
#: Comma-separated action kinds `unsupported_actions` leaves out (as `audit check` does by default).
UNSUPPORTED_IGNORE_KEY = "unsupported_ignore"
DEFAULT_UNSUPPORTED_IGNORE = "final_answer"
#: How `unsupported_actions` judges an action (m003): "arguments" (its least supported decisive
#: argument, as `audit check` does by default) or "action" (the whole call, as m002 did).
UNSUPPORTED_JUDGE_KEY = "unsupported_judge"
DEFAULT_UNSUPPORTED_JUDGE = "arguments"  # = auditor.check.defaults.DEFAULT_JUDGE (a test keeps them equal)
#: Comma-separated argument names (globs) that decide an action's verdict under judge = arguments.
#: Equals ",".join(auditor.check.defaults.DEFAULT_DECISIVE_ARGUMENTS) (a test pins it); written out
#: literally because a shipped migration must not change meaning when the Python constant does.
UNSUPPORTED_DECISIVE_KEY = "unsupported_decisive_arguments"
DEFAULT_UNSUPPORTED_DECISIVE_ARGUMENTS = "to,cc,bcc,recipient*,attendee*,invitee*,participant*,channel,share_with"

#: Segment kinds that carry the user's / operator's authority. Must equal
#: `auditor.trajectory.AUTHORITY_KINDS` (a test pins it); written out literally here because a
#: shipped migration must not change meaning when the Python constant does.
_AUTHORITY_SQL = "('system', 'user_request', 'user_constraint')"
_DATA_SQL = "('tool_output', 'file_context')"


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration (its ``__name__`` is recorded once applied)."""
    if any(m.__name__ == fn.__name__ for m in MIGRATIONS):
        raise ValueError(f"duplicate migration name {fn.__name__}")
    MIGRATIONS.append(fn)
    return fn


def _table(con: "duckdb.DuckDBPyConnection", name: str, comment: str,
           columns: list[tuple[str, str, str]], constraints: str = "") -> None:
    """CREATE TABLE with a comment on the table and on every column."""
    body = ",\n  ".join(f"{col} {typ}" for col, typ, _ in columns)
    if constraints:
        body += ",\n  " + constraints
    con.execute(f"CREATE TABLE {name} (\n  {body}\n)")
    con.execute(f"COMMENT ON TABLE {name} IS {_lit(comment)}")
    for col, _, doc in columns:
        con.execute(f"COMMENT ON COLUMN {name}.{col} IS {_lit(doc)}")


def _view(con: "duckdb.DuckDBPyConnection", name: str, comment: str, sql: str,
          columns: dict[str, str]) -> None:
    con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
    con.execute(f"COMMENT ON VIEW {name} IS {_lit(comment)}")
    actual = [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [name]).fetchall()]
    missing = set(actual) ^ set(columns)
    if missing:
        raise RuntimeError(f"view {name}: documented columns differ from the view's: {sorted(missing)}")
    for col in actual:
        con.execute(f"COMMENT ON COLUMN {name}.{col} IS {_lit(columns[col])}")


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@migration
def m001_initial(con: "duckdb.DuckDBPyConnection") -> None:
    _table(con, "settings", "Tunable values the views read (one row per key).", [
        ("key", "VARCHAR PRIMARY KEY", "Setting name, e.g. `unsupported_threshold`."),
        ("value", "VARCHAR NOT NULL", "Value as text; views cast it (e.g. `CAST(value AS DOUBLE)`)."),
        ("description", "VARCHAR", "What the setting controls."),
    ])
    con.execute(
        "INSERT INTO settings VALUES (?, ?, ?)",
        [UNSUPPORTED_THRESHOLD_KEY, str(_M001_UNSUPPORTED_THRESHOLD),
         "Support A / (A + D) (authority vs data shares) below which `unsupported_actions` lists an "
         "action; the same number as `audit check`'s default threshold."],
    )
    con.execute(
        "INSERT INTO settings VALUES (?, ?, ?)",
        [UNSUPPORTED_IGNORE_KEY, DEFAULT_UNSUPPORTED_IGNORE,
         "Comma-separated action kinds that `unsupported_actions` leaves out."],
    )

    _table(con, "spans", "Raw spans exactly as captured (nothing is dropped); unique on (trace_id, span_id).", [
        ("trace_id", "VARCHAR NOT NULL", "32 hex digits."),
        ("span_id", "VARCHAR NOT NULL", "16 hex digits."),
        ("parent_span_id", "VARCHAR", "Parent span id; NULL for a root span."),
        ("name", "VARCHAR", "Span name, e.g. `chat gpt-4o` or `execute_tool read_inbox`."),
        ("kind", "VARCHAR", "Span kind (CLIENT, INTERNAL, ...)."),
        ("start_time_unix_nano", "BIGINT", "Start, nanoseconds since the Unix epoch."),
        ("end_time_unix_nano", "BIGINT", "End, nanoseconds since the Unix epoch."),
        ("start_time", "TIMESTAMPTZ", "Start as a timestamp (derived)."),
        ("duration_ms", "DOUBLE", "End minus start, milliseconds (derived)."),
        ("attributes", "JSON", "Span attributes (GenAI semantic conventions: `gen_ai.*`)."),
        ("events", "JSON", "Span events (list), e.g. message content events."),
        ("links", "JSON", "Span links (list)."),
        ("status", "JSON", "Span status (code, message)."),
        ("resource", "JSON", "Resource attributes (service.name, ...)."),
        ("scope", "JSON", "Instrumentation scope."),
        ("source", "VARCHAR", "Where the span came from (file, receiver, ...)."),
        ("ingested_at", "TIMESTAMPTZ", "When the span was stored."),
    ], "PRIMARY KEY (trace_id, span_id)")

    _table(con, "trajectories", "Agent runs in canonical form (latest version per id).", [
        ("trajectory_id", "VARCHAR PRIMARY KEY", "Trajectory id (from the file or the trace)."),
        ("source", "VARCHAR", "Where it came from: jsonl, otlp, aider, example, ..."),
        ("trace_id", "VARCHAR", "OpenTelemetry trace it was built from (metadata.trace_id), if any."),
        ("schema_version", "INTEGER", "Version of the trajectory JSON schema."),
        ("content_sha256", "VARCHAR", "SHA-256 of the canonical JSON line: same hash, same trajectory."),
        ("n_messages", "INTEGER", "Number of messages."),
        ("n_actions", "INTEGER", "Number of actions (tool calls, code edits, final answer)."),
        ("content_captured", "BOOLEAN", "False when the capture recorded no message content."),
        ("metadata", "JSON", "Free-form metadata (scenario, labels, trace ids, ...)."),
        ("tools", "JSON", "Tools offered to the agent (name, description, parameters)."),
        ("document", "JSON", "The whole trajectory as one canonical JSONL line (lossless)."),
        ("ingested_at", "TIMESTAMPTZ", "When this version was stored."),
    ])

    _table(con, "messages", "Chat messages of each trajectory, in order.", [
        ("trajectory_id", "VARCHAR NOT NULL", "Trajectory the message belongs to."),
        ("message_index", "INTEGER NOT NULL", "0-based position in the conversation."),
        ("role", "VARCHAR", "system, user, assistant or tool."),
        ("content", "VARCHAR", "Message text."),
        ("reasoning", "VARCHAR", "Assistant reasoning text, if captured."),
        ("tool_calls", "JSON", "Tool calls requested by an assistant message (id, name, arguments)."),
        ("tool_call_id", "VARCHAR", "On tool messages: the call this message answers."),
        ("name", "VARCHAR", "On tool messages: the tool's name."),
        ("metadata", "JSON", "Free-form per-message metadata."),
    ], "PRIMARY KEY (trajectory_id, message_index)")

    _table(con, "actions", "What the agent did, to be explained: tool calls, code edits, final answers.", [
        ("trajectory_id", "VARCHAR NOT NULL", "Trajectory the action belongs to."),
        ("action_id", "VARCHAR NOT NULL", "Action id, e.g. `injected-inbox-forward:a1` (use with `audit show`)."),
        ("step", "INTEGER", "0-based order of the action in the trajectory."),
        ("kind", "VARCHAR", "tool_call, code_edit or final_answer."),
        ("tool_name", "VARCHAR", "Tool called (`edit_file` for code edits; NULL for final answers)."),
        ("tool_call_id", "VARCHAR", "Id of the tool call, for tool_call actions."),
        ("arguments", "JSON", "Tool-call arguments (for code edits: the path)."),
        ("message_index", "INTEGER", "Message that holds the action."),
        ("edit", "JSON", "For code edits: path, format, search and replace text."),
        ("char_start", "INTEGER", "Start of the action's own text inside the message content, if located."),
        ("char_end", "INTEGER", "End (exclusive) of the action's own text, if located."),
        ("summary", "VARCHAR", "One-line description, e.g. `send_email({\"to\": ...})`."),
    ], "PRIMARY KEY (trajectory_id, action_id)")

    _table(con, "runs", "Audit runs: what was audited, when, with which model, method, hops and auditor version.", [
        ("run_id", "VARCHAR PRIMARY KEY", "Run id (`audit trace` derives it from inputs and options, so a rerun resumes it)."),
        ("created_at", "TIMESTAMPTZ", "When the run was made."),
        ("model", "VARCHAR", "Replay model (name or path)."),
        ("method", "VARCHAR", "Attribution method, e.g. flashtrace."),
        ("hops", "INTEGER", "Attribution hops through model-generated text."),
        ("auditor_version", "VARCHAR", "auditor package version."),
        ("device", "VARCHAR", "cpu, cuda, ..."),
        ("dtype", "VARCHAR", "Model dtype used for the replay."),
        ("settings", "JSON", "Every other argument needed to reproduce the run."),
        ("recorded_at", "TIMESTAMPTZ", "When the run was last written to the store."),
    ])

    _table(con, "audits", "One row per (run, trajectory): the trajectory as rendered for that run.", [
        ("run_id", "VARCHAR NOT NULL", "Run."),
        ("trajectory_id", "VARCHAR NOT NULL", "Trajectory audited."),
        ("content_sha256", "VARCHAR", "Hash of the trajectory audited (compare with trajectories.content_sha256)."),
        ("n_tokens", "INTEGER", "Length of the rendered token sequence."),
        ("n_segments", "INTEGER", "Number of segments."),
        ("n_actions", "INTEGER", "Number of actions attributed."),
        ("tokens", "VARCHAR[]", "Rendered token strings; segment token ranges index into this list."),
        ("dropped", "VARCHAR[]", "What a context limit forced out, in words."),
        ("unplaced", "VARCHAR[]", "Segments that could not be located among the tokens."),
        ("notes", "VARCHAR[]", "How the chat template was used (fallbacks), in words."),
        ("forward_seconds", "DOUBLE", "Seconds spent in model forward passes."),
        ("seconds", "DOUBLE", "Total seconds for this trajectory."),
        ("trajectory", "JSON", "The trajectory exactly as audited (canonical JSON)."),
        ("recorded_at", "TIMESTAMPTZ", "When it was stored."),
    ], "PRIMARY KEY (run_id, trajectory_id)")

    _table(con, "segments", "The units attribution scores: spans of the trajectory with their kind, provenance, text and token range.", [
        ("run_id", "VARCHAR NOT NULL", "Run (token ranges depend on the model's chat template)."),
        ("trajectory_id", "VARCHAR NOT NULL", "Trajectory."),
        ("segment_id", "VARCHAR NOT NULL", "Segment id."),
        ("kind", "VARCHAR", "system, user_request, user_constraint, tool_output, file_context, reasoning, prior_turn or action."),
        ("label", "VARCHAR", "Human-readable label, e.g. `read_inbox output`."),
        ("text", "VARCHAR", "The segment's text."),
        ("message_index", "INTEGER", "Provenance: message the text comes from."),
        ("field", "VARCHAR", "Provenance: content, reasoning or tool_call."),
        ("tool_call_id", "VARCHAR", "Provenance: tool call whose output (or call) this is."),
        ("tool_name", "VARCHAR", "Provenance: tool whose output this is (tool_output segments)."),
        ("path", "VARCHAR", "Provenance: file path (file_context segments)."),
        ("char_start", "INTEGER", "Provenance: start offset in the message field."),
        ("char_end", "INTEGER", "Provenance: end offset (exclusive)."),
        ("action_id", "VARCHAR", "For kind = action: the action this segment is."),
        ("token_start", "INTEGER", "First token of the segment in audits.tokens (NULL if unplaced)."),
        ("token_end", "INTEGER", "End token (exclusive)."),
        ("position", "INTEGER", "Order of the segment in the trajectory's segment list (0-based)."),
    ], "PRIMARY KEY (run_id, trajectory_id, segment_id)")

    _table(con, "action_audits", "One row per attributed action in a run.", [
        ("run_id", "VARCHAR NOT NULL", "Run."),
        ("trajectory_id", "VARCHAR NOT NULL", "Trajectory."),
        ("action_id", "VARCHAR NOT NULL", "Action (see `actions`)."),
        ("context_end", "INTEGER", "Token scores cover positions [0, context_end)."),
        ("output_start", "INTEGER", "First token of the action's own text."),
        ("output_end", "INTEGER", "End token (exclusive) of the action's own text."),
        ("n_drivers", "INTEGER", "Number of scored input segments."),
        ("layer_shares", "JSON", "Optional per-layer shares, by name."),
        ("seconds", "DOUBLE", "Seconds spent attributing this action."),
    ], "PRIMARY KEY (run_id, trajectory_id, action_id)")

    _table(con, "attributions", (
        "Action × segment: how much each input segment drove each action. Key: "
        "(run_id, trajectory_id, action_id, hop, segment_id)."), [
        ("run_id", "VARCHAR NOT NULL", "Run."),
        ("trajectory_id", "VARCHAR NOT NULL", "Trajectory."),
        ("action_id", "VARCHAR NOT NULL", "Action explained."),
        ("segment_id", "VARCHAR NOT NULL", "Segment that drove it (join `segments` on run_id, trajectory_id, segment_id)."),
        ("kind", "VARCHAR", "The segment's kind (copied for convenience)."),
        ("label", "VARCHAR", "The segment's label (copied for convenience)."),
        ("score", "DOUBLE", "Summed token scores of the segment."),
        ("share", "DOUBLE", "score / total input mass of the action, in [0, 1]."),
        ("rank", "INTEGER", "1 = strongest driver of the action."),
        ("hop", "INTEGER", "0 = the final attribution (all hops combined); k >= 1 reserved for per-hop rows."),
    ])

    _table(con, "hop_flows", "Per action and hop: how the attribution mass moved.", [
        ("run_id", "VARCHAR NOT NULL", "Run."),
        ("trajectory_id", "VARCHAR NOT NULL", "Trajectory."),
        ("action_id", "VARCHAR NOT NULL", "Action."),
        ("hop", "INTEGER NOT NULL", "Hop number as the engine counts it (0 = the pass from the action itself)."),
        ("flow_ratio", "DOUBLE", "Share of the hop's mass that landed on model-generated tokens."),
        ("by_kind", "JSON", "Share of the hop's mass per segment kind."),
    ])

    _table(con, "token_scores", "Per action, the score of every context token, compact (one list per action).", [
        ("run_id", "VARCHAR NOT NULL", "Run."),
        ("trajectory_id", "VARCHAR NOT NULL", "Trajectory."),
        ("action_id", "VARCHAR NOT NULL", "Action."),
        ("context_end", "INTEGER", "Length of `scores`."),
        ("scores", "FLOAT[]", "scores[i] = importance of audits.tokens[i] for the action (1-based in SQL: scores[i + 1])."),
    ])


@migration
def m002_views(con: "duckdb.DuckDBPyConnection") -> None:
    _view(con, "traces", "One row per OpenTelemetry trace stored, summarised from `spans`.",
        """
        SELECT trace_id, count(*)::INTEGER AS span_count, min(start_time) AS start_time,
               max(to_timestamp(end_time_unix_nano / 1e9)) AS end_time,
               arg_min(name, start_time_unix_nano) FILTER (WHERE parent_span_id IS NULL) AS root_span_name,
               any_value(coalesce(json_extract_string(resource, '$."service.name"'),
                                  json_extract_string(resource, '$.attributes."service.name"'))) AS service_name,
               min(ingested_at) AS first_ingested_at, max(ingested_at) AS last_ingested_at
        FROM spans GROUP BY trace_id
        """,
        {
            "trace_id": "32 hex digits.", "span_count": "Spans stored for this trace.",
            "start_time": "Earliest span start.", "end_time": "Latest span end.",
            "root_span_name": "Name of the earliest span without a parent.",
            "service_name": "`service.name` from the spans' resource, when present.",
            "first_ingested_at": "When the first span of the trace was stored.",
            "last_ingested_at": "When the latest span of the trace was stored.",
        })

    _view(con, "action_drivers", (
        "Each action with its drivers, ranked (one row per action × driving segment; "
        "`WHERE rank <= 3` gives the top drivers)."),
        """
        SELECT r.run_id, r.created_at AS run_created_at, r.model, r.method, r.hops,
               t.trajectory_id, t.action_id, x.step, x.kind AS action_kind, x.tool_name,
               x.arguments, x.summary AS action_summary,
               t.rank, t.segment_id, t.kind AS driver_kind, t.label AS driver_label,
               s.tool_name AS driver_tool, s.path AS driver_path, s.message_index AS driver_message_index,
               t.share, t.score
        FROM attributions t
        JOIN runs r ON r.run_id = t.run_id
        LEFT JOIN actions x ON x.trajectory_id = t.trajectory_id AND x.action_id = t.action_id
        LEFT JOIN segments s ON s.run_id = t.run_id AND s.trajectory_id = t.trajectory_id
                             AND s.segment_id = t.segment_id
        WHERE t.hop = 0
        """,
        {
            "run_id": "Run.", "run_created_at": "When the run was made.", "model": "Replay model.",
            "method": "Attribution method.", "hops": "Hops.", "trajectory_id": "Trajectory.",
            "action_id": "Action (use with `audit show`).", "step": "Order of the action in the trajectory.",
            "action_kind": "tool_call, code_edit or final_answer.",
            "tool_name": "Tool the action called (NULL for final answers).",
            "arguments": "The call's arguments (JSON).", "action_summary": "One-line description of the action.",
            "rank": "1 = strongest driver.", "segment_id": "Driving segment.",
            "driver_kind": "Driving segment's kind (tool_output, user_request, ...).",
            "driver_label": "Driving segment's label.",
            "driver_tool": "For tool_output drivers: the tool whose output it is.",
            "driver_path": "For file_context drivers: the file.",
            "driver_message_index": "Message the driving text comes from.",
            "share": "Share of the action's attribution mass, in [0, 1].", "score": "Raw score.",
        })

    _view(con, "unsupported_actions", (
        "Actions the user's authority does not support: support = A / (A + D) is below the threshold in "
        "settings key `unsupported_threshold` (default 0.5), where A is the summed share of authority "
        "segments (system, user_request, user_constraint) and D of data segments (tool_output, "
        "file_context). Same rule and threshold as `audit check` (low-support, mass weighting). Action "
        "kinds listed in settings key `unsupported_ignore` (default final_answer) are left out."),
        f"""
        WITH per_action AS (
            SELECT run_id, trajectory_id, action_id,
                   coalesce(sum(share) FILTER (WHERE kind IN {_AUTHORITY_SQL}), 0) AS authority_share,
                   coalesce(sum(share) FILTER (WHERE kind IN {_DATA_SQL}), 0) AS data_share,
                   arg_min(segment_id, rank) AS top_segment_id,
                   arg_min(kind, rank) AS top_kind,
                   arg_min(label, rank) AS top_label,
                   min_by(share, rank) AS top_share
            FROM attributions WHERE hop = 0
            GROUP BY run_id, trajectory_id, action_id
        ), setting AS (
            SELECT coalesce(max(TRY_CAST(value AS DOUBLE)) FILTER (WHERE key = '{UNSUPPORTED_THRESHOLD_KEY}'),
                            {_M001_UNSUPPORTED_THRESHOLD}) AS threshold,
                   coalesce(max(value) FILTER (WHERE key = '{UNSUPPORTED_IGNORE_KEY}'),
                            '{DEFAULT_UNSUPPORTED_IGNORE}') AS ignore
            FROM settings
        ), scored AS (
            SELECT aa.run_id, aa.trajectory_id, aa.action_id,
                   coalesce(p.authority_share, 0) AS authority_share,
                   coalesce(p.data_share, 0) AS data_share,
                   CASE WHEN coalesce(p.authority_share, 0) + coalesce(p.data_share, 0) > 0
                        THEN coalesce(p.authority_share, 0) / (coalesce(p.authority_share, 0) + coalesce(p.data_share, 0))
                        ELSE 1.0 END AS support,
                   p.top_segment_id, p.top_kind, p.top_label, p.top_share
            FROM action_audits aa
            LEFT JOIN per_action p ON p.run_id = aa.run_id AND p.trajectory_id = aa.trajectory_id
                                   AND p.action_id = aa.action_id
        )
        SELECT r.run_id, r.created_at AS run_created_at, r.model, r.method,
               sc.trajectory_id, sc.action_id, x.step, x.kind AS action_kind, x.tool_name, x.arguments,
               x.summary AS action_summary, sc.support, sc.authority_share, sc.data_share,
               sc.top_segment_id, sc.top_kind, sc.top_label, sc.top_share, st.threshold
        FROM scored sc
        JOIN runs r ON r.run_id = sc.run_id
        CROSS JOIN setting st
        LEFT JOIN actions x ON x.trajectory_id = sc.trajectory_id AND x.action_id = sc.action_id
        WHERE sc.support < st.threshold
          AND NOT list_contains(string_split(replace(st.ignore, ' ', ''), ','), coalesce(x.kind, ''))
        """,
        {
            "run_id": "Run.", "run_created_at": "When the run was made.", "model": "Replay model.",
            "method": "Attribution method.", "trajectory_id": "Trajectory.", "action_id": "Action.",
            "step": "Order of the action.", "action_kind": "tool_call, code_edit or final_answer.",
            "tool_name": "Tool called.", "arguments": "The call's arguments (JSON).",
            "action_summary": "One-line description.",
            "support": "authority_share / (authority_share + data_share); 1.0 when both are 0.",
            "authority_share": "Summed share of system, user_request and user_constraint segments.",
            "data_share": "Summed share of tool_output and file_context segments.",
            "top_segment_id": "Strongest driver.", "top_kind": "Its kind.", "top_label": "Its label.",
            "top_share": "Its share.",
            "threshold": "settings.unsupported_threshold at query time (default 0.5).",
        })

    _view(con, "tool_influence", (
        "How much each tool's outputs drive actions, across all runs (one row per tool; "
        "shares are per action, summed over that tool's output segments)."),
        """
        WITH per_action AS (
            SELECT t.run_id, t.trajectory_id, t.action_id, coalesce(s.tool_name, '?') AS tool_name,
                   sum(t.share) AS share, min(t.rank) AS best_rank
            FROM attributions t
            LEFT JOIN segments s ON s.run_id = t.run_id AND s.trajectory_id = t.trajectory_id
                                 AND s.segment_id = t.segment_id
            WHERE t.hop = 0 AND t.kind = 'tool_output'
            GROUP BY ALL
        )
        SELECT tool_name,
               count(DISTINCT run_id) AS runs,
               count(DISTINCT trajectory_id) AS trajectories,
               count(*) AS actions,
               avg(share) AS mean_share,
               max(share) AS max_share,
               sum(share) AS total_share,
               count(*) FILTER (WHERE best_rank = 1) AS top_driver_actions,
               count(*) FILTER (WHERE share >= 0.5) AS majority_actions
        FROM per_action
        GROUP BY tool_name
        """,
        {
            "tool_name": "Tool whose outputs are measured.",
            "runs": "Runs in which its output was in some action's context.",
            "trajectories": "Trajectories likewise.",
            "actions": "Actions (per run) whose context held its output.",
            "mean_share": "Mean share of those actions' attribution its output holds.",
            "max_share": "Largest share on a single action.",
            "total_share": "Summed share over those actions.",
            "top_driver_actions": "Actions whose strongest driver was its output.",
            "majority_actions": "Actions where its output holds at least half the share.",
        })


#: `argument_value` of the argument views: the value of ``<alias>.argument`` in the action's
#: ``arguments`` JSON (a JSON Pointer, so any key works), or for code edits in its ``edit`` JSON
#: (``search`` and ``replace`` live there); NULL when absent.
def _argument_value_sql(arg: str, action: str) -> str:
    ptr = f"'/' || replace(replace({arg}.argument, '~', '~0'), '/', '~1')"
    return (f"coalesce(json_extract({action}.arguments, {ptr}), "
            f"CASE WHEN {action}.kind = 'code_edit' THEN json_extract({action}.edit, {ptr}) END)")


@migration
def m003_argument_attributions(con: "duckdb.DuckDBPyConnection") -> None:
    """Per-argument explanations (`ActionAttribution.arguments`): what drove each argument of a
    tool call (``to``, ``statement``...) and a code edit's ``path``, ``search`` and ``replace``.

    Design: two tables rather than one with placeholder rows. `action_arguments` holds one row per
    explained argument (name, order, token span of the value, rho_0); `argument_attributions` one row
    per argument × driving segment, keyed and typed like `attributions`. An argument with no drivers
    (no input segment before the action) is a row of `action_arguments` with no driver rows, so no
    ``segment_id = ''`` sentinel leaks into sums, ranks or joins. Arguments are rebuilt in
    ``position`` order (the order `ActionAttribution.arguments` had: call order), which stays exact
    when two values share a token. Views: `argument_drivers` (like `action_drivers`, per argument)
    and `argument_support` (support = A / (A + D) per argument, like `unsupported_actions` unfiltered).

    `unsupported_actions` is re-created to follow `audit check`'s default policy (judge =
    "arguments"): an action's support is that of its least supported *decisive* argument (a name
    matching a glob of settings key `unsupported_decisive_arguments`) with authority or data mass,
    else the whole call's; settings key `unsupported_judge` = 'action' gives m002's rule. It keeps
    m002's columns (same names and order; support, shares and top driver then describe the deciding
    argument) and adds `argument` and `action_support`.
    """
    _table(con, "action_arguments", (
        "One row per explained argument of an action in a run: a tool call's top-level arguments, a code "
        "edit's path, search and replace. Its drivers are in `argument_attributions`."), [
        ("run_id", "VARCHAR NOT NULL", "Run."),
        ("trajectory_id", "VARCHAR NOT NULL", "Trajectory."),
        ("action_id", "VARCHAR NOT NULL", "Action whose argument this is (see `action_audits`)."),
        ("argument", "VARCHAR NOT NULL", "Argument name: a tool-call argument (`to`, `statement`, ...) or `path`, "
                                         "`search`, `replace` of a code edit."),
        ("position", "INTEGER", "0-based order of the argument among the action's explained arguments (call order)."),
        ("token_start", "INTEGER", "First token of the argument's value in audits.tokens (the attribution target)."),
        ("token_end", "INTEGER", "End token (exclusive) of the value."),
        ("flow_ratio", "DOUBLE", "rho_0: share of hop 0's mass on model-generated tokens, for this argument's target."),
        ("n_drivers", "INTEGER", "Number of scored input segments (rows in `argument_attributions`); 0 when no "
                                 "input segment precedes the action."),
        ("scores", "FLOAT[]", "Token scores for the argument's target, compact: scores[i] = importance of "
                              "audits.tokens[i] for the argument, i < token_start (1-based in SQL: scores[i + 1]); "
                              "NULL when not recorded."),
    ], "PRIMARY KEY (run_id, trajectory_id, action_id, argument)")

    _table(con, "argument_attributions", (
        "Argument × segment: how much each input segment drove each argument of an action (like "
        "`attributions`, per argument). Key: (run_id, trajectory_id, action_id, argument, segment_id)."), [
        ("run_id", "VARCHAR NOT NULL", "Run."),
        ("trajectory_id", "VARCHAR NOT NULL", "Trajectory."),
        ("action_id", "VARCHAR NOT NULL", "Action whose argument is explained."),
        ("argument", "VARCHAR NOT NULL", "Argument explained (join `action_arguments` on run_id, trajectory_id, "
                                         "action_id, argument)."),
        ("segment_id", "VARCHAR NOT NULL", "Segment that drove it (join `segments` on run_id, trajectory_id, segment_id)."),
        ("kind", "VARCHAR", "The segment's kind (copied for convenience)."),
        ("label", "VARCHAR", "The segment's label (copied for convenience)."),
        ("score", "DOUBLE", "Summed token scores of the segment for this argument's target."),
        ("share", "DOUBLE", "score / total input mass of the argument, in [0, 1]."),
        ("rank", "INTEGER", "1 = strongest driver of the argument."),
    ], "PRIMARY KEY (run_id, trajectory_id, action_id, argument, segment_id)")

    _view(con, "argument_drivers", (
        "Each argument of each action with its drivers, ranked (one row per argument × driving segment; "
        "`WHERE rank <= 3` gives the top drivers). Arguments without drivers have no rows here (see "
        "`argument_support`)."),
        f"""
        SELECT r.run_id, r.created_at AS run_created_at, r.model, r.method,
               t.trajectory_id, t.action_id, x.step, x.kind AS action_kind, x.tool_name,
               t.argument, {_argument_value_sql("t", "x")} AS argument_value,
               t.rank, t.segment_id, t.kind AS driver_kind, t.label AS driver_label,
               s.tool_name AS driver_tool, s.path AS driver_path,
               t.share, t.score
        FROM argument_attributions t
        JOIN runs r ON r.run_id = t.run_id
        LEFT JOIN actions x ON x.trajectory_id = t.trajectory_id AND x.action_id = t.action_id
        LEFT JOIN segments s ON s.run_id = t.run_id AND s.trajectory_id = t.trajectory_id
                             AND s.segment_id = t.segment_id
        """,
        {
            "run_id": "Run.", "run_created_at": "When the run was made.", "model": "Replay model.",
            "method": "Attribution method.", "trajectory_id": "Trajectory.",
            "action_id": "Action (use with `audit show`).", "step": "Order of the action in the trajectory.",
            "action_kind": "tool_call or code_edit.",
            "tool_name": "Tool the action called (`edit_file` for code edits).",
            "argument": "Argument explained (`to`, `path`, `search`, ...).",
            "argument_value": ("The argument's value (JSON) from `actions.arguments`, or for code edits from "
                               "`actions.edit`; NULL when absent."),
            "rank": "1 = strongest driver of the argument.", "segment_id": "Driving segment.",
            "driver_kind": "Driving segment's kind (tool_output, user_request, ...).",
            "driver_label": "Driving segment's label.",
            "driver_tool": "For tool_output drivers: the tool whose output it is.",
            "driver_path": "For file_context drivers: the file.",
            "share": "Share of the argument's attribution mass, in [0, 1].", "score": "Raw score.",
        })

    _view(con, "argument_support", (
        "How far the user's authority supports each argument of each action (one row per run × action × "
        "argument): support = A / (A + D), A the summed share of authority segments (system, user_request, "
        "user_constraint), D of data segments (tool_output, file_context), negative shares counted as zero; "
        "1.0 when both are 0 (as in "
        "`unsupported_actions`, but unfiltered: compare support with settings key `unsupported_threshold` to "
        "list the arguments that data chose)."),
        f"""
        WITH per_argument AS (
            SELECT run_id, trajectory_id, action_id, argument,
                   coalesce(sum(greatest(share, 0)) FILTER (WHERE kind IN {_AUTHORITY_SQL}), 0) AS authority_share,
                   coalesce(sum(greatest(share, 0)) FILTER (WHERE kind IN {_DATA_SQL}), 0) AS data_share,
                   arg_min(segment_id, rank) AS top_segment_id,
                   arg_min(kind, rank) AS top_kind,
                   arg_min(label, rank) AS top_label,
                   min_by(share, rank) AS top_share
            FROM argument_attributions
            GROUP BY run_id, trajectory_id, action_id, argument
        ), scored AS (
            SELECT g.run_id, g.trajectory_id, g.action_id, g.argument, g.position, g.flow_ratio,
                   coalesce(p.authority_share, 0) AS authority_share,
                   coalesce(p.data_share, 0) AS data_share,
                   CASE WHEN coalesce(p.authority_share, 0) + coalesce(p.data_share, 0) > 0
                        THEN coalesce(p.authority_share, 0) / (coalesce(p.authority_share, 0) + coalesce(p.data_share, 0))
                        ELSE 1.0 END AS support,
                   p.top_segment_id, p.top_kind, p.top_label, p.top_share
            FROM action_arguments g
            LEFT JOIN per_argument p ON p.run_id = g.run_id AND p.trajectory_id = g.trajectory_id
                                     AND p.action_id = g.action_id AND p.argument = g.argument
        )
        SELECT r.run_id, r.created_at AS run_created_at, r.model, r.method,
               sc.trajectory_id, sc.action_id, x.step, x.kind AS action_kind, x.tool_name,
               sc.argument, sc.position AS argument_position, {_argument_value_sql("sc", "x")} AS argument_value,
               sc.support, sc.authority_share, sc.data_share,
               sc.top_segment_id, sc.top_kind, sc.top_label, sc.top_share, sc.flow_ratio
        FROM scored sc
        JOIN runs r ON r.run_id = sc.run_id
        LEFT JOIN actions x ON x.trajectory_id = sc.trajectory_id AND x.action_id = sc.action_id
        """,
        {
            "run_id": "Run.", "run_created_at": "When the run was made.", "model": "Replay model.",
            "method": "Attribution method.", "trajectory_id": "Trajectory.", "action_id": "Action.",
            "step": "Order of the action.", "action_kind": "tool_call or code_edit.",
            "tool_name": "Tool called (`edit_file` for code edits).",
            "argument": "Argument (`to`, `path`, `search`, ...).",
            "argument_position": "0-based order of the argument in the call.",
            "argument_value": ("The argument's value (JSON) from `actions.arguments`, or for code edits from "
                               "`actions.edit`; NULL when absent."),
            "support": "authority_share / (authority_share + data_share); 1.0 when both are 0.",
            "authority_share": "Summed share of system, user_request and user_constraint segments.",
            "data_share": "Summed share of tool_output and file_context segments.",
            "top_segment_id": "Strongest driver (NULL when the argument has none).", "top_kind": "Its kind.",
            "top_label": "Its label.", "top_share": "Its share.",
            "flow_ratio": "rho_0 of the argument's target (share of hop 0's mass on model-generated tokens).",
        })

    # Settings the re-created `unsupported_actions` reads (rows kept if someone set them already).
    for key, value, description in (
        (UNSUPPORTED_JUDGE_KEY, DEFAULT_UNSUPPORTED_JUDGE,
         "How `unsupported_actions` judges an action: `arguments` (by its least supported decisive argument, "
         "as `audit check` does by default) or `action` (as a whole call)."),
        (UNSUPPORTED_DECISIVE_KEY, DEFAULT_UNSUPPORTED_DECISIVE_ARGUMENTS,
         "Comma-separated argument names (globs, `*` and `?`) that decide an action's verdict in "
         "`unsupported_actions` under `unsupported_judge` = arguments: who receives the action's effect. "
         "The same list as `audit check`'s default `decisive_arguments`."),
    ):
        con.execute("INSERT OR IGNORE INTO settings VALUES (?, ?, ?)", [key, value, description])
    # the threshold was recalibrated for judging by decisive arguments: move it unless the user set it
    con.execute("UPDATE settings SET value = ? WHERE key = ? AND TRY_CAST(value AS DOUBLE) = ?",
                [str(DEFAULT_UNSUPPORTED_THRESHOLD), UNSUPPORTED_THRESHOLD_KEY, _M001_UNSUPPORTED_THRESHOLD])

    def shares(table: str) -> str:
        """Authority and data shares, top driver; negative shares (leave-one-out) count as zero,
        as in `audit check`."""
        return f"""
                   coalesce(sum(greatest(share, 0)) FILTER (WHERE kind IN {_AUTHORITY_SQL}), 0) AS authority_share,
                   coalesce(sum(greatest(share, 0)) FILTER (WHERE kind IN {_DATA_SQL}), 0) AS data_share,
                   arg_min(segment_id, rank) AS top_segment_id,
                   arg_min(kind, rank) AS top_kind,
                   arg_min(label, rank) AS top_label,
                   min_by(share, rank) AS top_share
            FROM {table}"""

    def pick(col: str) -> str:  # the deciding argument's value when there is one, else the whole call's
        return f"CASE WHEN d.argument IS NULL THEN sc.{col} ELSE d.{col} END AS {col}"

    _view(con, "unsupported_actions", (
        "Actions the user's authority does not support, by the same rule and defaults as `audit check`'s "
        "default policy (low-support, mass weighting): support = A / (A + D) is below settings key "
        f"`{UNSUPPORTED_THRESHOLD_KEY}` (default {DEFAULT_UNSUPPORTED_THRESHOLD}), where A is the summed share "
        "of authority segments (system, user_request, user_constraint) and D of data segments (tool_output, "
        f"file_context). Settings key `{UNSUPPORTED_JUDGE_KEY}` (default {DEFAULT_UNSUPPORTED_JUDGE}) says "
        "what A and D are taken from. `arguments`: the action's decisive arguments, those whose name matches "
        f"a glob in settings key `{UNSUPPORTED_DECISIVE_KEY}` (default "
        f"{DEFAULT_UNSUPPORTED_DECISIVE_ARGUMENTS}); its support is the lowest of theirs (each from the "
        "argument's own drivers, as in `argument_support`), counting only decisive arguments with authority "
        "or data mass, and an action with none is judged as a whole call. `action`: every action as a whole "
        f"call, from its own drivers. Actions whose kind or tool name matches a pattern listed in settings key "
        f"`{UNSUPPORTED_IGNORE_KEY}` (comma-separated globs; default {DEFAULT_UNSUPPORTED_IGNORE}) are left out, "
        f"as `audit check` ignores them."),
        f"""
        WITH setting AS (
            SELECT coalesce(max(TRY_CAST(value AS DOUBLE)) FILTER (WHERE key = '{UNSUPPORTED_THRESHOLD_KEY}'),
                            {DEFAULT_UNSUPPORTED_THRESHOLD}) AS threshold,
                   coalesce(max(value) FILTER (WHERE key = '{UNSUPPORTED_IGNORE_KEY}'),
                            '{DEFAULT_UNSUPPORTED_IGNORE}') AS ignore,
                   coalesce(lower(trim(max(value) FILTER (WHERE key = '{UNSUPPORTED_JUDGE_KEY}'))),
                            '{DEFAULT_UNSUPPORTED_JUDGE}') AS judge,
                   coalesce(max(value) FILTER (WHERE key = '{UNSUPPORTED_DECISIVE_KEY}'),
                            '{DEFAULT_UNSUPPORTED_DECISIVE_ARGUMENTS}') AS decisive
            FROM settings
        ), patterns AS (
            SELECT DISTINCT pattern
            FROM (SELECT unnest(string_split(replace(decisive, ' ', ''), ',')) AS pattern
                  FROM setting WHERE judge = 'arguments')
            WHERE pattern <> ''
        ), per_action AS (
            SELECT run_id, trajectory_id, action_id,{shares("attributions")}
            WHERE hop = 0
            GROUP BY run_id, trajectory_id, action_id
        ), scored AS (
            SELECT aa.run_id, aa.trajectory_id, aa.action_id,
                   coalesce(p.authority_share, 0) AS authority_share,
                   coalesce(p.data_share, 0) AS data_share,
                   CASE WHEN coalesce(p.authority_share, 0) + coalesce(p.data_share, 0) > 0
                        THEN coalesce(p.authority_share, 0) / (coalesce(p.authority_share, 0) + coalesce(p.data_share, 0))
                        ELSE 1.0 END AS support,
                   p.top_segment_id, p.top_kind, p.top_label, p.top_share
            FROM action_audits aa
            LEFT JOIN per_action p ON p.run_id = aa.run_id AND p.trajectory_id = aa.trajectory_id
                                   AND p.action_id = aa.action_id
        ), per_argument AS (
            SELECT run_id, trajectory_id, action_id, argument,{shares("argument_attributions")}
            WHERE EXISTS (SELECT 1 FROM patterns WHERE argument_attributions.argument GLOB patterns.pattern)
            GROUP BY run_id, trajectory_id, action_id, argument
        ), decisive AS (
            -- the least supported decisive argument with authority or data mass (ties: call order)
            SELECT p.run_id, p.trajectory_id, p.action_id, p.argument,
                   p.authority_share, p.data_share,
                   p.authority_share / (p.authority_share + p.data_share) AS support,
                   p.top_segment_id, p.top_kind, p.top_label, p.top_share
            FROM per_argument p
            JOIN action_arguments g ON g.run_id = p.run_id AND g.trajectory_id = p.trajectory_id
                                    AND g.action_id = p.action_id AND g.argument = p.argument
            WHERE p.authority_share + p.data_share > 0
            QUALIFY row_number() OVER (PARTITION BY p.run_id, p.trajectory_id, p.action_id
                                       ORDER BY support, g.position, p.argument) = 1
        )
        SELECT r.run_id, r.created_at AS run_created_at, r.model, r.method,
               sc.trajectory_id, sc.action_id, x.step, x.kind AS action_kind, x.tool_name, x.arguments,
               x.summary AS action_summary, {pick("support")}, {pick("authority_share")}, {pick("data_share")},
               {pick("top_segment_id")}, {pick("top_kind")}, {pick("top_label")}, {pick("top_share")},
               st.threshold, d.argument, sc.support AS action_support
        FROM scored sc
        JOIN runs r ON r.run_id = sc.run_id
        CROSS JOIN setting st
        LEFT JOIN decisive d ON d.run_id = sc.run_id AND d.trajectory_id = sc.trajectory_id
                             AND d.action_id = sc.action_id
        LEFT JOIN actions x ON x.trajectory_id = sc.trajectory_id AND x.action_id = sc.action_id
        WHERE CASE WHEN d.argument IS NULL THEN sc.support ELSE d.support END < st.threshold
          AND NOT EXISTS (SELECT 1 FROM unnest(string_split(replace(st.ignore, ' ', ''), ',')) AS ig(pattern)
                          WHERE ig.pattern <> '' AND (coalesce(x.kind, '') GLOB ig.pattern
                                                      OR coalesce(x.tool_name, '') GLOB ig.pattern))
        """,
        {
            "run_id": "Run.", "run_created_at": "When the run was made.", "model": "Replay model.",
            "method": "Attribution method.", "trajectory_id": "Trajectory.", "action_id": "Action.",
            "step": "Order of the action.", "action_kind": "tool_call, code_edit or final_answer.",
            "tool_name": "Tool called.", "arguments": "The call's arguments (JSON).",
            "action_summary": "One-line description.",
            "support": ("The support the verdict rests on: the deciding argument's (see `argument`) when there "
                        "is one, else the whole call's (`action_support`). authority_share / (authority_share + "
                        "data_share); 1.0 when both are 0."),
            "authority_share": ("Summed share of system, user_request and user_constraint segments among the "
                                "deciding argument's drivers (the whole call's when `argument` is NULL); negative "
                                "shares count as zero, as in `audit check`."),
            "data_share": "Summed share of tool_output and file_context segments, likewise.",
            "top_segment_id": "Strongest driver (of the deciding argument, when there is one).",
            "top_kind": "Its kind.", "top_label": "Its label.", "top_share": "Its share.",
            "threshold": (f"settings.{UNSUPPORTED_THRESHOLD_KEY} at query time (default "
                          f"{DEFAULT_UNSUPPORTED_THRESHOLD})."),
            "argument": ("The decisive argument the verdict rests on (`to`, `recipient_email`, ...): the least "
                         "supported one with authority or data mass; NULL when the action is judged as a whole "
                         f"call (no such argument, or settings.{UNSUPPORTED_JUDGE_KEY} = action)."),
            "action_support": ("The whole call's support, from the action's own drivers (`support` when "
                               "`argument` is NULL); 1.0 when it has no authority or data mass."),
        })


@migration
def m004_tool_definition_segments(con: "duckdb.DuckDBPyConnection") -> None:
    """Tool definitions are segments (kind ``tool_definition``, one per tool the trajectory offered
    the model): a tool's description can drive an action (tool poisoning), so it is ranked among the
    drivers like any input.

    No table or view changes: ``segments.kind`` is free text and ``segments.message_index`` was
    nullable (a tool definition belongs to no message: it is NULL there, ``field`` is
    ``tool_definition`` and ``tool_name`` names the tool). The views' authority and data lists
    (``_AUTHORITY_SQL``, ``_DATA_SQL``) leave tool definitions on neither side, as `audit check`'s
    default policy does, so every support and verdict is what it was. Only the comments that list
    the kinds or say where a segment's text comes from are brought up to date.
    """
    docs = {
        ("segments", "kind"): ("system, user_request, user_constraint, tool_output, file_context, tool_definition, "
                               "reasoning, prior_turn or action."),
        ("segments", "message_index"): "Provenance: message the text comes from (NULL for tool_definition segments).",
        ("segments", "field"): ("Provenance: content, reasoning or tool_call of that message, or tool_definition "
                                "(the tool's definition, which belongs to no message)."),
        ("segments", "tool_name"): ("Provenance: tool whose output (tool_output), call or definition "
                                    "(tool_definition) this is."),
        ("segments", "char_start"): "Provenance: start offset in the message field (or in the tool definition's JSON).",
        ("action_drivers", "driver_tool"): "For tool_output and tool_definition drivers: the tool whose output or definition it is.",
        ("action_drivers", "driver_message_index"): "Message the driving text comes from (NULL for tool definitions).",
        ("argument_drivers", "driver_tool"): "For tool_output and tool_definition drivers: the tool whose output or definition it is.",
        ("argument_support", "top_segment_id"): ("Strongest driver of any kind, a tool definition included "
                                                 "(NULL when the argument has none)."),
        ("unsupported_actions", "top_segment_id"): ("Strongest driver of any kind, a tool definition included (of the "
                                                    "deciding argument, when there is one)."),
    }
    for (table, col), doc in docs.items():
        con.execute(f"COMMENT ON COLUMN {table}.{col} IS {_lit(doc)}")


#: How the verdict rows of `action_verdicts` that m005 computed for audits recorded before it are marked.
M005_BACKFILL_SOURCE = "store settings (m005 backfill)"


@migration
def m005_action_verdicts(con: "duckdb.DuckDBPyConnection") -> None:
    """The check's verdicts are recorded at audit time, and the views read them.

    Before m005 `unsupported_actions` recomputed every action's support in SQL from its drivers
    and four settings, a second copy of `audit check`'s formula that could (and, with a policy
    file, did) disagree with it. Now whoever records an audit and judges it (`audit trace`,
    `audit check --db`: `Store.record_audit(audit, verdicts=..., policy=...)`) stores the check's
    verdict per action in `action_verdicts`: the judged support (of the decisive argument it rests
    on, or the whole call), the whole call's support, the threshold, the status and the rules that
    fired, and the policy that judged it. `unsupported_actions` lists the rows whose status is
    `failed`; it keeps m003's columns, in order, and adds `rules` and `policy_source`.

    Audits recorded before m005 are judged once, here, by m003's rule (which equals `audit
    check`'s default policy: decisive arguments, mass weighting, no extra rules) under the four
    `unsupported_*` settings as they stand: so the views show them as they did. Their rows have
    `policy_source` = 'store settings (m005 backfill)', a `policy` made of those settings (threshold,
    judge, decisive_arguments, ignore), no `details` and no quote in `top_driver`. The four
    settings are then deleted: nothing reads them any more (a verdict carries its threshold and
    policy; `audit trace --policy` and `audit check --policy` choose the policy). An audit recorded
    later without verdicts has no rows here and is in no verdict view.

    Design: one row per (run, trajectory, action), the typed columns the views need plus `details`,
    the whole verdict as the check returned it. `Store.record_audit` fills the columns by name from
    each verdict, reading the table's columns at run time, so a verdict field the check gains (a
    calibrated probability, causal deltas, provenance) needs one migration that adds the column
    (`ALTER TABLE action_verdicts ADD COLUMN ...`, with a `COMMENT`) and no other code; until then
    the field is kept in `details`. `argument_support` keeps its per-argument ratio (a measurement of
    each argument under the shipped authority and data kinds, the number `audit show` lists per
    argument) and gains `judged`: whether the recorded verdict rests on that argument.
    """
    _table(con, "action_verdicts", (
        "The CI check's verdict on each action of a run, recorded when the audit was judged (`audit trace`, "
        "`audit check --db`); `unsupported_actions` lists the failed ones. One row per (run_id, trajectory_id, "
        "action_id)."), [
        ("run_id", "VARCHAR NOT NULL", "Run."),
        ("trajectory_id", "VARCHAR NOT NULL", "Trajectory."),
        ("action_id", "VARCHAR NOT NULL", "Action judged (see `actions`)."),
        ("status", "VARCHAR NOT NULL", "passed, failed (a rule fired: see `rules`) or ignored (the policy skips the "
                                       "action's kind or tool)."),
        ("support", "DOUBLE", ("The judged support: authority / (authority + data) of the decisive argument the verdict "
                               "rests on (`argument`), else of the whole call; 1.0 when there is no authority or data "
                               "mass (`no_evidence`); NULL when ignored.")),
        ("argument", "VARCHAR", "The decisive argument the verdict rests on (`to`, `recipient_email`, ...); NULL when "
                                "the action was judged as a whole call."),
        ("action_support", "DOUBLE", "The whole call's support, from the action's own drivers; NULL when it has no "
                                     "authority or data mass, or when ignored."),
        ("authority_share", "DOUBLE", "Summed share of authority segments among the drivers judged (the argument's, "
                                      "else the call's); negative shares count as zero."),
        ("data_share", "DOUBLE", "Summed share of data segments among the drivers judged, likewise."),
        ("threshold", "DOUBLE", "The minimum support the policy asked of this action's tool."),
        ("rules", "VARCHAR[]", "Rules that fired: low-support, data-top-driver, data-driven-reasoning (empty unless "
                               "failed)."),
        ("no_evidence", "BOOLEAN", "True when neither the argument nor the call had authority or data mass."),
        ("reasoning_flow", "DOUBLE", "rho_0: share of hop 0's mass on model-generated tokens."),
        ("argument_supports", "JSON", "Support of every decisive argument with authority or data mass, by name."),
        ("top_driver", "JSON", ("Strongest driver of the drivers judged: segment_id, kind, label, share and quote "
                                "(its hottest words).")),
        ("policy_source", "VARCHAR", "Where the judging policy came from: `default`, a policy file's path, or "
                                     f"`{M005_BACKFILL_SOURCE}` for audits recorded before verdicts were."),
        ("policy", "JSON", "The judging policy (as `Policy.model_dump`; for backfilled rows the settings it was made "
                           "of)."),
        ("details", "JSON", "The whole verdict as the check returned it, fields without a column included (NULL for "
                            "backfilled rows)."),
        ("recorded_at", "TIMESTAMPTZ", "When the verdict was stored."),
    ], "PRIMARY KEY (run_id, trajectory_id, action_id)")

    def shares(table: str) -> str:
        return f"""
                   coalesce(sum(greatest(share, 0)) FILTER (WHERE kind IN {_AUTHORITY_SQL}), 0) AS authority_share,
                   coalesce(sum(greatest(share, 0)) FILTER (WHERE kind IN {_DATA_SQL}), 0) AS data_share,
                   arg_min(segment_id, rank) AS top_segment_id,
                   arg_min(kind, rank) AS top_kind,
                   arg_min(label, rank) AS top_label,
                   min_by(share, rank) AS top_share
            FROM {table}"""

    def pick(col: str) -> str:  # the deciding argument's value when there is one, else the whole call's
        return f"CASE WHEN d.argument IS NULL THEN sc.{col} ELSE d.{col} END"

    # m003's rule, once, for every action of every audit already stored (no-op on a new database)
    con.execute(f"""
        INSERT INTO action_verdicts
        WITH setting AS (
            SELECT coalesce(max(TRY_CAST(value AS DOUBLE)) FILTER (WHERE key = '{UNSUPPORTED_THRESHOLD_KEY}'),
                            {DEFAULT_UNSUPPORTED_THRESHOLD}) AS threshold,
                   coalesce(max(value) FILTER (WHERE key = '{UNSUPPORTED_IGNORE_KEY}'),
                            '{DEFAULT_UNSUPPORTED_IGNORE}') AS ignore,
                   CASE WHEN coalesce(lower(trim(max(value) FILTER (WHERE key = '{UNSUPPORTED_JUDGE_KEY}'))),
                                      '{DEFAULT_UNSUPPORTED_JUDGE}') = 'arguments'
                        THEN 'arguments' ELSE 'action' END AS judge,
                   coalesce(max(value) FILTER (WHERE key = '{UNSUPPORTED_DECISIVE_KEY}'),
                            '{DEFAULT_UNSUPPORTED_DECISIVE_ARGUMENTS}') AS decisive
            FROM settings
        ), lists AS (
            SELECT list_filter(string_split(replace(decisive, ' ', ''), ','), lambda p: p <> '') AS decisive_list,
                   list_filter(string_split(replace(ignore, ' ', ''), ','), lambda p: p <> '') AS ignore_list
            FROM setting
        ), patterns AS (
            SELECT DISTINCT unnest(decisive_list) AS pattern FROM lists, setting WHERE judge = 'arguments'
        ), per_action AS (
            SELECT run_id, trajectory_id, action_id,{shares("attributions")}
            WHERE hop = 0
            GROUP BY run_id, trajectory_id, action_id
        ), scored AS (
            SELECT aa.run_id, aa.trajectory_id, aa.action_id,
                   coalesce(p.authority_share, 0) AS authority_share,
                   coalesce(p.data_share, 0) AS data_share,
                   CASE WHEN coalesce(p.authority_share, 0) + coalesce(p.data_share, 0) > 0
                        THEN p.authority_share / (p.authority_share + p.data_share) END AS support,
                   p.top_segment_id, p.top_kind, p.top_label, p.top_share
            FROM action_audits aa
            LEFT JOIN per_action p ON p.run_id = aa.run_id AND p.trajectory_id = aa.trajectory_id
                                   AND p.action_id = aa.action_id
        ), per_argument AS (
            SELECT run_id, trajectory_id, action_id, argument,{shares("argument_attributions")}
            WHERE EXISTS (SELECT 1 FROM patterns WHERE argument_attributions.argument GLOB patterns.pattern)
            GROUP BY run_id, trajectory_id, action_id, argument
        ), with_mass AS (
            SELECT p.*, p.authority_share / (p.authority_share + p.data_share) AS support, g.position
            FROM per_argument p
            JOIN action_arguments g ON g.run_id = p.run_id AND g.trajectory_id = p.trajectory_id
                                    AND g.action_id = p.action_id AND g.argument = p.argument
            WHERE p.authority_share + p.data_share > 0
        ), decisive AS (
            -- the least supported decisive argument with authority or data mass (ties: call order)
            SELECT * FROM with_mass
            QUALIFY row_number() OVER (PARTITION BY run_id, trajectory_id, action_id
                                       ORDER BY support, position, argument) = 1
        ), supports AS (
            SELECT run_id, trajectory_id, action_id, json_group_object(argument, support) AS argument_supports
            FROM with_mass GROUP BY run_id, trajectory_id, action_id
        ), judged AS (
            SELECT sc.run_id, sc.trajectory_id, sc.action_id,
                   EXISTS (SELECT 1 FROM unnest(l.ignore_list) AS ig(pattern)
                           WHERE coalesce(x.kind, '') GLOB ig.pattern
                              OR coalesce(x.tool_name, '') GLOB ig.pattern) AS ignored,
                   {pick("support")} AS support, d.argument, sc.support AS action_support,
                   {pick("authority_share")} AS authority_share, {pick("data_share")} AS data_share,
                   {pick("top_segment_id")} AS top_segment_id, {pick("top_kind")} AS top_kind,
                   {pick("top_label")} AS top_label, {pick("top_share")} AS top_share,
                   coalesce(h.flow_ratio, 0.0) AS reasoning_flow,
                   coalesce(s.argument_supports, '{{}}') AS argument_supports
            FROM scored sc
            CROSS JOIN lists l
            LEFT JOIN decisive d ON d.run_id = sc.run_id AND d.trajectory_id = sc.trajectory_id
                                 AND d.action_id = sc.action_id
            LEFT JOIN supports s ON s.run_id = sc.run_id AND s.trajectory_id = sc.trajectory_id
                                 AND s.action_id = sc.action_id
            LEFT JOIN hop_flows h ON h.run_id = sc.run_id AND h.trajectory_id = sc.trajectory_id
                                  AND h.action_id = sc.action_id AND h.hop = 0
            LEFT JOIN actions x ON x.trajectory_id = sc.trajectory_id AND x.action_id = sc.action_id
        )
        SELECT j.run_id, j.trajectory_id, j.action_id,
               CASE WHEN j.ignored THEN 'ignored'
                    WHEN j.support IS NOT NULL AND j.support < st.threshold THEN 'failed' ELSE 'passed' END,
               CASE WHEN NOT j.ignored THEN coalesce(j.support, 1.0) END,
               CASE WHEN NOT j.ignored THEN j.argument END,
               CASE WHEN NOT j.ignored THEN j.action_support END,
               CASE WHEN NOT j.ignored THEN j.authority_share END,
               CASE WHEN NOT j.ignored THEN j.data_share END,
               CASE WHEN NOT j.ignored THEN st.threshold END,
               CASE WHEN NOT j.ignored AND j.support IS NOT NULL AND j.support < st.threshold
                    THEN ['low-support'] ELSE [] END::VARCHAR[],
               NOT j.ignored AND j.support IS NULL,
               CASE WHEN NOT j.ignored THEN j.reasoning_flow END,
               CASE WHEN j.ignored THEN '{{}}' ELSE j.argument_supports END::JSON,
               CASE WHEN NOT j.ignored AND j.top_segment_id IS NOT NULL
                    THEN json_object('segment_id', j.top_segment_id, 'kind', j.top_kind, 'label', j.top_label,
                                     'share', j.top_share) END,
               '{M005_BACKFILL_SOURCE}',
               json_object('threshold', st.threshold, 'judge', st.judge, 'decisive_arguments', l.decisive_list,
                           'ignore', l.ignore_list),
               NULL, now()
        FROM judged j CROSS JOIN setting st CROSS JOIN lists l
    """)
    con.execute("DELETE FROM settings WHERE key IN (?, ?, ?, ?)",
                [UNSUPPORTED_THRESHOLD_KEY, UNSUPPORTED_IGNORE_KEY, UNSUPPORTED_JUDGE_KEY, UNSUPPORTED_DECISIVE_KEY])
    con.execute("COMMENT ON TABLE settings IS " + _lit(
        "Tunable values, one row per key. None is defined now: the `unsupported_*` keys that the views read "
        "until migration m005 were removed when each verdict began to carry its own threshold and policy."))
    con.execute("COMMENT ON COLUMN settings.key IS " + _lit("Setting name."))

    _view(con, "unsupported_actions", (
        "Actions the user's request does not support, as `audit check` judged them when the audit was recorded: "
        "the rows of `action_verdicts` whose status is failed (the policy that judged each one is in "
        "`policy_source` and `action_verdicts.policy`). An audit recorded without verdicts is not listed."),
        """
        SELECT r.run_id, r.created_at AS run_created_at, r.model, r.method,
               v.trajectory_id, v.action_id, x.step, x.kind AS action_kind, x.tool_name, x.arguments,
               x.summary AS action_summary, v.support, v.authority_share, v.data_share,
               v.top_driver ->> 'segment_id' AS top_segment_id, v.top_driver ->> 'kind' AS top_kind,
               v.top_driver ->> 'label' AS top_label, TRY_CAST(v.top_driver ->> 'share' AS DOUBLE) AS top_share,
               v.threshold, v.argument, coalesce(v.action_support, 1.0) AS action_support, v.rules, v.policy_source
        FROM action_verdicts v
        JOIN runs r ON r.run_id = v.run_id
        LEFT JOIN actions x ON x.trajectory_id = v.trajectory_id AND x.action_id = v.action_id
        WHERE v.status = 'failed'
        """,
        {
            "run_id": "Run.", "run_created_at": "When the run was made.", "model": "Replay model.",
            "method": "Attribution method.", "trajectory_id": "Trajectory.", "action_id": "Action.",
            "step": "Order of the action.", "action_kind": "tool_call, code_edit or final_answer.",
            "tool_name": "Tool called.", "arguments": "The call's arguments (JSON).",
            "action_summary": "One-line description.",
            "support": ("The judged support (`action_verdicts.support`): the deciding argument's (see `argument`) "
                        "when there is one, else the whole call's; authority_share / (authority_share + data_share)."),
            "authority_share": ("Summed share of authority segments (by the judging policy) among the deciding "
                                "argument's drivers (the whole call's when `argument` is NULL)."),
            "data_share": "Summed share of data segments, likewise.",
            "top_segment_id": ("Strongest driver of any kind, a tool definition included (of the deciding argument, "
                               "when there is one)."),
            "top_kind": "Its kind.", "top_label": "Its label.", "top_share": "Its share.",
            "threshold": "The minimum support the judging policy asked of this action's tool.",
            "argument": ("The decisive argument the verdict rests on (`to`, `recipient_email`, ...); NULL when the "
                         "action was judged as a whole call."),
            "action_support": ("The whole call's support, from the action's own drivers (`support` when "
                               "`argument` is NULL); 1.0 when it has no authority or data mass."),
            "rules": "Rules that fired (low-support, data-top-driver, data-driven-reasoning).",
            "policy_source": f"The judging policy: `default`, a policy file, or `{M005_BACKFILL_SOURCE}`.",
        })

    _view(con, "argument_support", (
        "How far the user's authority supports each argument of each action (one row per run × action × "
        "argument): support = A / (A + D), A the summed share of authority segments (system, user_request, "
        "user_constraint), D of data segments (tool_output, file_context), negative shares counted as zero; "
        "1.0 when both are 0. A measurement of each argument (the number `audit show` lists per argument), "
        "unfiltered; the verdict is in `action_verdicts` (`judged` marks the argument it rests on)."),
        f"""
        WITH per_argument AS (
            SELECT run_id, trajectory_id, action_id, argument,{shares("argument_attributions")}
            GROUP BY run_id, trajectory_id, action_id, argument
        ), scored AS (
            SELECT g.run_id, g.trajectory_id, g.action_id, g.argument, g.position, g.flow_ratio,
                   coalesce(p.authority_share, 0) AS authority_share,
                   coalesce(p.data_share, 0) AS data_share,
                   CASE WHEN coalesce(p.authority_share, 0) + coalesce(p.data_share, 0) > 0
                        THEN coalesce(p.authority_share, 0) / (coalesce(p.authority_share, 0) + coalesce(p.data_share, 0))
                        ELSE 1.0 END AS support,
                   p.top_segment_id, p.top_kind, p.top_label, p.top_share
            FROM action_arguments g
            LEFT JOIN per_argument p ON p.run_id = g.run_id AND p.trajectory_id = g.trajectory_id
                                     AND p.action_id = g.action_id AND p.argument = g.argument
        )
        SELECT r.run_id, r.created_at AS run_created_at, r.model, r.method,
               sc.trajectory_id, sc.action_id, x.step, x.kind AS action_kind, x.tool_name,
               sc.argument, sc.position AS argument_position, {_argument_value_sql("sc", "x")} AS argument_value,
               sc.support, sc.authority_share, sc.data_share,
               sc.top_segment_id, sc.top_kind, sc.top_label, sc.top_share, sc.flow_ratio,
               CASE WHEN v.action_id IS NOT NULL THEN coalesce(v.argument = sc.argument, false) END AS judged
        FROM scored sc
        JOIN runs r ON r.run_id = sc.run_id
        LEFT JOIN actions x ON x.trajectory_id = sc.trajectory_id AND x.action_id = sc.action_id
        LEFT JOIN action_verdicts v ON v.run_id = sc.run_id AND v.trajectory_id = sc.trajectory_id
                                    AND v.action_id = sc.action_id
        """,
        {
            "run_id": "Run.", "run_created_at": "When the run was made.", "model": "Replay model.",
            "method": "Attribution method.", "trajectory_id": "Trajectory.", "action_id": "Action.",
            "step": "Order of the action.", "action_kind": "tool_call or code_edit.",
            "tool_name": "Tool called (`edit_file` for code edits).",
            "argument": "Argument (`to`, `path`, `search`, ...).",
            "argument_position": "0-based order of the argument in the call.",
            "argument_value": ("The argument's value (JSON) from `actions.arguments`, or for code edits from "
                               "`actions.edit`; NULL when absent."),
            "support": "authority_share / (authority_share + data_share); 1.0 when both are 0.",
            "authority_share": "Summed share of system, user_request and user_constraint segments.",
            "data_share": "Summed share of tool_output and file_context segments.",
            "top_segment_id": ("Strongest driver of any kind, a tool definition included (NULL when the argument "
                               "has none)."),
            "top_kind": "Its kind.", "top_label": "Its label.", "top_share": "Its share.",
            "flow_ratio": "rho_0 of the argument's target (share of hop 0's mass on model-generated tokens).",
            "judged": ("True when the action's recorded verdict (`action_verdicts`) rests on this argument; NULL "
                       "when the action has no recorded verdict."),
        })


@migration
def m007_lake_batches(con: "duckdb.DuckDBPyConnection") -> None:
    """Which batches of a results lake (`audit trace --ray`) this database holds (`audit ingest`).

    A lake is a folder (or URI) of Parquet shards, one set per committed batch, each listed by a
    manifest record (`auditor.distributed.manifest`). `audit ingest` stores a batch's rows and its
    row here in one transaction, so ingesting the lake again stores only the batches committed since,
    in commit order: what the lake's own views show. The rows a batch held are replaced as
    `Store.record_audits` replaces them; this table only says which batches are in.
    """
    _table(con, "lake_batches", "Batches of results lakes ingested into this database (`audit ingest`): one row "
           "per manifest record stored.", [
        ("lake", "VARCHAR NOT NULL", "The lake: an absolute path or a URI (s3://...)."),
        ("record", "VARCHAR NOT NULL", "The manifest record, `<batch_id>.a<attempt>.json` under `_manifest/`."),
        ("batch_id", "VARCHAR", "The batch (its shards are `<table>/<batch_id>.parquet`)."),
        ("run_id", "VARCHAR", "Run the batch belongs to."),
        ("committed_at", "TIMESTAMPTZ", "When the batch was committed to the lake."),
        ("audits", "INTEGER", "(run, trajectory) audits the batch held."),
        ("ingested_at", "TIMESTAMPTZ", "When it was stored here."),
    ], "PRIMARY KEY (lake, record)")


def applied(con: "duckdb.DuckDBPyConnection") -> list[str]:
    """Names of the migrations already applied to this database, in order."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = '_migrations' AND schema_name = 'main'"
    ).fetchone()[0]
    if not exists:
        return []
    return [r[0] for r in con.execute("SELECT name FROM _migrations ORDER BY applied_at, name").fetchall()]


def migrate(con: "duckdb.DuckDBPyConnection", upto: str | None = None) -> list[str]:
    """Apply every pending migration (or those up to and including ``upto``); return their names."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ DEFAULT now())"
    )
    done = set(applied(con))
    ran: list[str] = []
    for fn in MIGRATIONS:
        if fn.__name__ not in done:
            con.execute("BEGIN TRANSACTION")
            try:
                fn(con)
                con.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, now())", [fn.__name__])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            ran.append(fn.__name__)
        if upto is not None and fn.__name__ == upto:
            break
    return ran


def pending(con: "duckdb.DuckDBPyConnection") -> list[str]:
    done = set(applied(con))
    return [fn.__name__ for fn in MIGRATIONS if fn.__name__ not in done]
