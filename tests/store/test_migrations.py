"""The schema: migrations apply in order, once, in transactions; old databases upgrade."""

from __future__ import annotations

import duckdb
import pytest

from auditor.store import Store, migrations
from auditor.store.ingest import SCHEMAS
from auditor.trajectory import AUTHORITY_KINDS, DATA_KINDS

VIEWS = {"action_drivers", "unsupported_actions", "tool_influence"}


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
        assert ro.pending_migrations == ["m002_views"]
    with Store(path) as store:
        assert store.migrated == ["m002_views"]
        assert VIEWS <= set(store.relations())
        assert store.query("SELECT run_id FROM runs")[1] == [("r-old",)]
        store.record_audits(example_audits)
        assert store.query("SELECT count(*) FROM action_drivers")[1][0][0] > 0


def test_a_failing_migration_rolls_back_and_is_not_recorded(monkeypatch):
    def m999_broken(con):
        con.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("boom")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m999_broken])
    con = duckdb.connect(":memory:")
    with pytest.raises(RuntimeError, match="boom"):
        migrations.migrate(con)
    assert "m999_broken" not in migrations.applied(con)
    assert migrations.applied(con) == ["m001_initial", "m002_views"]
    assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'half_done'").fetchone()[0]


def test_view_kind_lists_match_the_trajectory_model():
    as_set = lambda sql: {s.strip(" '") for s in sql.strip("()").split(",")}  # noqa: E731
    assert as_set(migrations._AUTHORITY_SQL) == {k.value for k in AUTHORITY_KINDS}
    assert as_set(migrations._DATA_SQL) == {k.value for k in DATA_KINDS}


def test_default_threshold_is_the_checks():
    from auditor.check import defaults

    assert migrations.DEFAULT_UNSUPPORTED_THRESHOLD == defaults.DEFAULT_THRESHOLD
    assert migrations.DEFAULT_UNSUPPORTED_IGNORE.split(",") == list(defaults.DEFAULT_IGNORE)


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
