"""The schema: migrations apply in order, once, in transactions; old databases upgrade."""

from __future__ import annotations

import duckdb
import pytest

from auditor.store import Store, ingest, migrations
from auditor.store.ingest import SCHEMAS
from auditor.trajectory import AUTHORITY_KINDS, DATA_KINDS

VIEWS = {"action_drivers", "unsupported_actions", "tool_influence", "argument_drivers", "argument_support"}


def _columns(con, name):
    return [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [name]).fetchall()]


def test_names_are_ordered_unique_and_numbered():
    names = [m.__name__ for m in migrations.MIGRATIONS]
    assert names == sorted(names) and len(set(names)) == len(names)
    assert all(n[0] == "m" and n[1:4].isdigit() and n[4] == "_" for n in names)
    assert names[:2] == ["m001_initial", "m002_views"]


def test_blank_database_gets_every_table_view_and_column(tmp_path):
    path = tmp_path / "a.duckdb"
    with Store(path) as store:
        assert store.migrated == [m.__name__ for m in migrations.MIGRATIONS]
        con = store.connection
        for table, cols in SCHEMAS.items():
            assert set(c for c, _ in cols) <= set(_columns(con, table)), table
        assert VIEWS <= set(store.relations())
        assert "run_id" in _columns(con, "action_drivers") and "support" in _columns(con, "unsupported_actions")
        assert store.get_setting("unsupported_threshold") == str(migrations.DEFAULT_UNSUPPORTED_THRESHOLD)
    with Store(path) as store:  # reopening applies nothing twice
        assert store.migrated == []


def test_old_schema_database_is_upgraded_and_keeps_its_data(tmp_path, example_audits):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    assert migrations.migrate(con, upto="m001_initial") == ["m001_initial"]
    con.execute("INSERT INTO runs (run_id, model, method, hops) VALUES ('r-old', 'm', 'flashtrace', 1)")
    con.close()
    with Store(path, read_only=True) as ro:  # a read-only open says what is missing, changes nothing
        assert ro.pending_migrations == ["m002_views", "m003_argument_attributions", "m004_tool_definition_segments"]
    with Store(path) as store:
        assert store.migrated == ["m002_views", "m003_argument_attributions", "m004_tool_definition_segments"]
        assert VIEWS <= set(store.relations())
        assert store.query("SELECT run_id FROM runs")[1] == [("r-old",)]
        store.record_audits(example_audits)
        assert store.query("SELECT count(*) FROM action_drivers")[1][0][0] > 0


def _record_with_old_code(con, audits):
    """Write ``audits`` into whatever tables this database has, as an auditor before m003 did."""
    present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    tables = {"runs": ingest.run_table(audits), **ingest.audit_tables(audits)}
    for name, data in tables.items():
        if name not in present:
            continue
        cols = ", ".join(data.column_names)
        con.register("_old_rows", data)
        con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM _old_rows")
        con.unregister("_old_rows")


def test_m002_database_gets_argument_tables_and_keeps_its_rows(tmp_path, example_audits):
    path = tmp_path / "m002.duckdb"
    con = duckdb.connect(str(path))
    assert migrations.migrate(con, upto="m002_views") == ["m001_initial", "m002_views"]
    _record_with_old_code(con, example_audits)
    before = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("runs", "audits", "segments", "action_audits", "attributions", "token_scores")}
    assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'action_arguments'").fetchone()[0]
    unsupported_sql = "SELECT run_id, action_id, support, top_segment_id FROM unsupported_actions ORDER BY ALL"
    m002_unsupported = con.execute(unsupported_sql).fetchall()
    assert m002_unsupported
    con.close()

    with Store(path) as store:
        assert store.migrated == ["m003_argument_attributions", "m004_tool_definition_segments"]
        assert {"action_arguments", "argument_attributions", "argument_drivers", "argument_support"} \
            <= set(store.relations())
        assert {t: store.counts()[t] for t in before} == before
        assert store.counts()["action_arguments"] == store.counts()["argument_attributions"] == 0
        # no argument rows yet: the re-created view judges whole calls, as m002's did
        assert store.query(unsupported_sql)[1] == m002_unsupported
        assert store.query("SELECT DISTINCT argument FROM unsupported_actions")[1] == [(None,)]
        audit = example_audits[0]
        old = store.load_audit("run-a", audit.trajectory.id)  # recorded before arguments were kept
        assert old == audit.model_copy(update={"actions": [a.model_copy(update={"arguments": []})
                                                           for a in audit.actions]})
        store.record_audits(example_audits)  # the current code rewrites them, arguments included
        assert store.load_audit("run-a", audit.trajectory.id) == audit
        assert store.counts()["action_arguments"] == sum(len(a.arguments) for au in example_audits
                                                         for a in au.actions)
    with Store(path) as store:
        assert store.migrated == []


def test_a_failing_migration_rolls_back_and_is_not_recorded(monkeypatch):
    def m999_broken(con):
        con.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("boom")

    shipped = [m.__name__ for m in migrations.MIGRATIONS]
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m999_broken])
    con = duckdb.connect(":memory:")
    with pytest.raises(RuntimeError, match="boom"):
        migrations.migrate(con)
    assert "m999_broken" not in migrations.applied(con)
    assert migrations.applied(con) == shipped
    assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'half_done'").fetchone()[0]


def test_view_kind_lists_match_the_trajectory_model():
    as_set = lambda sql: {s.strip(" '") for s in sql.strip("()").split(",")}  # noqa: E731
    assert as_set(migrations._AUTHORITY_SQL) == {k.value for k in AUTHORITY_KINDS}
    assert as_set(migrations._DATA_SQL) == {k.value for k in DATA_KINDS}


def test_default_threshold_is_the_checks():
    from auditor.check import defaults

    assert migrations.DEFAULT_UNSUPPORTED_THRESHOLD == defaults.DEFAULT_THRESHOLD
    assert migrations.DEFAULT_UNSUPPORTED_IGNORE.split(",") == list(defaults.DEFAULT_IGNORE)


def test_default_judge_and_decisive_arguments_are_the_checks():
    """m003 writes the decisive list out literally; it must say what `audit check`'s defaults say,
    and the view supports only what those defaults use (no per-tool thresholds or argument lists,
    mass weighting, no extra rules)."""
    from auditor.check import defaults

    assert migrations.DEFAULT_UNSUPPORTED_JUDGE == defaults.DEFAULT_JUDGE
    assert migrations.DEFAULT_UNSUPPORTED_DECISIVE_ARGUMENTS.split(",") == list(defaults.DEFAULT_DECISIVE_ARGUMENTS)
    assert not any("," in p or " " in p for p in defaults.DEFAULT_DECISIVE_ARGUMENTS)
    assert defaults.DEFAULT_TOOL_ARGUMENTS == {} and defaults.DEFAULT_TOOL_THRESHOLDS == {}
    assert defaults.DEFAULT_WEIGHTING == "mass"
    assert not defaults.DEFAULT_DATA_TOP_DRIVER and defaults.DEFAULT_MAX_REASONING_FLOW == 1.0
    with Store(":memory:") as store:
        comment = store.connection.execute(
            "SELECT comment FROM duckdb_views() WHERE view_name = 'unsupported_actions'").fetchone()[0]
    assert f"default {defaults.DEFAULT_THRESHOLD})" in comment and "0.5" not in comment
    assert f"default {migrations.DEFAULT_UNSUPPORTED_DECISIVE_ARGUMENTS})" in comment


def test_every_table_and_column_is_documented(store):
    con = store.connection
    rows = con.execute("SELECT table_name, column_name, comment FROM duckdb_columns() "
                       "WHERE schema_name = 'main' AND NOT internal AND NOT starts_with(table_name, '_')").fetchall()
    assert rows
    assert [r for r in rows if not r[2]] == []
    assert not con.execute("SELECT table_name FROM duckdb_tables() WHERE comment IS NULL "
                           "AND NOT starts_with(table_name, '_')").fetchall()
    assert "unsupported_threshold" in con.execute(
        "SELECT comment FROM duckdb_views() WHERE view_name = 'unsupported_actions'").fetchone()[0]


def test_m003_moves_an_untouched_threshold_and_keeps_a_chosen_one(tmp_path):
    """m001 stored 0.25 (whole calls); m003 recalibrated it for decisive arguments."""
    import duckdb

    for stored, expected in (("0.25", str(migrations.DEFAULT_UNSUPPORTED_THRESHOLD)), ("0.4", "0.4")):
        path = tmp_path / f"old-{stored}.duckdb"
        con = duckdb.connect(str(path))
        migrations.migrate(con, upto="m002_views")
        con.execute("UPDATE settings SET value = ? WHERE key = 'unsupported_threshold'", [stored])
        con.close()
        with Store(path) as store:
            assert "m003_argument_attributions" in store.migrated
            assert store.get_setting("unsupported_threshold") == expected
