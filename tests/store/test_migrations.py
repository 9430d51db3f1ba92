"""The schema: migrations apply in order, once, in transactions; old databases upgrade."""

from __future__ import annotations

import json

import duckdb
import pytest

from auditor.store import Store, migrations
from auditor.store.ingest import SCHEMAS
from auditor.trajectory import AUTHORITY_KINDS, DATA_KINDS
from helpers.store import record_with_old_code

VIEWS = {"action_drivers", "unsupported_actions", "tool_influence", "argument_drivers", "argument_support"}
SHIPPED = ["m002_views", "m003_argument_attributions", "m004_tool_definition_segments", "m005_action_verdicts",
           "m007_lake_batches"]


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
        assert "action_verdicts" in store.relations()
        assert store.get_setting("unsupported_threshold") is None  # m005: verdicts carry their threshold
    with Store(path) as store:  # reopening applies nothing twice
        assert store.migrated == []


def test_old_schema_database_is_upgraded_and_keeps_its_data(tmp_path, example_audits):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    assert migrations.migrate(con, upto="m001_initial") == ["m001_initial"]
    con.execute("INSERT INTO runs (run_id, model, method, hops) VALUES ('r-old', 'm', 'flashtrace', 1)")
    con.close()
    with Store(path, read_only=True) as ro:  # a read-only open says what is missing, changes nothing
        assert ro.pending_migrations == SHIPPED
    with Store(path) as store:
        assert store.migrated == SHIPPED
        assert VIEWS <= set(store.relations())
        assert store.query("SELECT run_id FROM runs")[1] == [("r-old",)]
        store.record_audits(example_audits)
        assert store.query("SELECT count(*) FROM action_drivers")[1][0][0] > 0


def test_m002_database_gets_argument_tables_and_keeps_its_rows(tmp_path, example_audits):
    path = tmp_path / "m002.duckdb"
    con = duckdb.connect(str(path))
    assert migrations.migrate(con, upto="m002_views") == ["m001_initial", "m002_views"]
    record_with_old_code(con, example_audits)
    before = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("runs", "audits", "segments", "action_audits", "attributions", "token_scores")}
    assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'action_arguments'").fetchone()[0]
    unsupported_sql = "SELECT run_id, action_id, support, top_segment_id FROM unsupported_actions ORDER BY ALL"
    m002_unsupported = con.execute(unsupported_sql).fetchall()
    assert m002_unsupported
    con.close()

    with Store(path) as store:
        assert store.migrated == SHIPPED[1:]
        assert {"action_arguments", "argument_attributions", "argument_drivers", "argument_support"} \
            <= set(store.relations())
        assert {t: store.counts()[t] for t in before} == before
        assert store.counts()["action_arguments"] == store.counts()["argument_attributions"] == 0
        # no argument rows yet: m005's verdicts judge whole calls, as m002's view did
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
    con = duckdb.connect(":memory:")  # m003's view (m005 judges audits recorded before it by its rule)
    migrations.migrate(con, upto="m004_tool_definition_segments")
    comment = con.execute("SELECT comment FROM duckdb_views() WHERE view_name = 'unsupported_actions'").fetchone()[0]
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
    assert "action_verdicts" in con.execute(
        "SELECT comment FROM duckdb_views() WHERE view_name = 'unsupported_actions'").fetchone()[0]


def test_m003_moves_an_untouched_threshold_and_keeps_a_chosen_one(tmp_path):
    """m001 stored 0.25 (whole calls); m003 recalibrated it for decisive arguments."""
    import duckdb

    for stored, expected in (("0.25", str(migrations.DEFAULT_UNSUPPORTED_THRESHOLD)), ("0.4", "0.4")):
        con = duckdb.connect(":memory:")
        migrations.migrate(con, upto="m002_views")
        con.execute("UPDATE settings SET value = ? WHERE key = 'unsupported_threshold'", [stored])
        assert migrations.migrate(con, upto="m003_argument_attributions") == ["m003_argument_attributions"]
        assert con.execute("SELECT value FROM settings WHERE key = 'unsupported_threshold'").fetchone()[0] == expected


M003_COLUMNS = ("run_id, trajectory_id, action_id, step, action_kind, tool_name, action_summary, support, "
                "authority_share, data_share, top_segment_id, top_kind, top_label, top_share, threshold, argument, "
                "action_support")


@pytest.mark.parametrize("settings", [{}, {"unsupported_threshold": 0.4}, {"unsupported_judge": "action"},
                                      {"unsupported_decisive_arguments": "body,to", "unsupported_ignore": ""}])
def test_m005_judges_older_audits_once_as_the_view_did(tmp_path, example_audits, settings):
    """Audits recorded before verdicts were: m005 judges them by m003's rule under the settings as
    they stand, so `unsupported_actions` lists what it listed; the settings then go."""
    from auditor.check import policy_from_dict

    from helpers.store import old_database

    path = old_database(tmp_path / "m004.duckdb", example_audits, "m004_tool_definition_segments", settings)
    con = duckdb.connect(str(path))
    sql = f"SELECT {M003_COLUMNS} FROM unsupported_actions ORDER BY ALL"
    before = con.execute(sql).fetchall()
    con.close()
    with Store(path) as store:
        assert store.migrated == SHIPPED[SHIPPED.index("m005_action_verdicts"):]
        assert store.query(sql)[1] == before
        rows = store.query("SELECT action_id, policy_source, policy, details FROM action_verdicts ORDER BY ALL")[1]
        assert len(rows) == store.counts()["action_audits"]  # every explained action, ignored ones too
        assert {(r[1], r[3]) for r in rows} == {(migrations.M005_BACKFILL_SOURCE, None)}
        policy = policy_from_dict(json.loads(rows[0][2]))
        assert policy.threshold == float(settings.get("unsupported_threshold", migrations.DEFAULT_UNSUPPORTED_THRESHOLD))
        assert policy.judge == settings.get("unsupported_judge", "arguments")
        assert store.query("SELECT count(*) FROM settings WHERE key LIKE 'unsupported_%'")[1] == [(0,)]


def test_a_verdict_field_gets_its_column_from_one_migration(monkeypatch, example_audits):
    """The store fills `action_verdicts` by column name: a field the check gains is kept in
    `details` until a migration adds its column, and then fills it with no other change."""
    def m999_calibrated(con):
        con.execute("ALTER TABLE action_verdicts ADD COLUMN p_injection DOUBLE")
        con.execute("COMMENT ON COLUMN action_verdicts.p_injection IS 'Calibrated probability of an injection.'")

    audit = example_audits[0]
    verdicts = [{"action_id": a.action.id, "status": "passed", "support": 0.9, "p_injection": 0.25}
                for a in audit.actions]
    with Store(":memory:") as store:
        store.record_audit(audit, verdicts)
        assert {r[0]: json.loads(r[1])["p_injection"] for r in store.query(
            "SELECT action_id, details FROM action_verdicts")[1]} == {v["action_id"]: 0.25 for v in verdicts}
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m999_calibrated])
    with Store(":memory:") as store:
        store.record_audit(audit, verdicts)
        assert store.query("SELECT DISTINCT p_injection, support FROM action_verdicts")[1] == [(0.25, 0.9)]
        # a field of the wrong type is an error (nothing of the audit is written), not a silent NULL
        with pytest.raises(duckdb.Error):
            store.record_audit(audit.model_copy(update={"run": audit.run.model_copy(update={"run_id": "r2"})}),
                               [{**verdicts[0], "support": "high"}])
        assert store.query("SELECT count(*) FROM audits WHERE run_id = 'r2'")[1] == [(0,)]
