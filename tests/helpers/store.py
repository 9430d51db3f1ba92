"""Databases as older auditors left them: migrated up to some step, written with the tables of that
time, so tests can open them with the current code and see what a migration made of them."""

from __future__ import annotations

from pathlib import Path

import duckdb

from auditor.store import ingest, migrations


def record_with_old_code(con: duckdb.DuckDBPyConnection, audits) -> None:
    """Write ``audits`` into whatever tables (and columns) this database has, as an auditor of that
    time did (no verdicts: they were not recorded before m005; no context ids before m006)."""
    present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    tables = {**ingest.trajectory_tables([a.trajectory for a in audits]), "runs": ingest.run_table(audits),
              **ingest.audit_tables(audits)}
    for name, data in tables.items():
        if name not in present:
            continue
        have = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = ?",
                                         [name]).fetchall()}
        cols = ", ".join(c for c in data.column_names if c in have)  # columns a later migration added: absent then
        con.register("_old_rows", data)
        con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM _old_rows")
        con.unregister("_old_rows")


def old_database(path: Path, audits, upto: str, settings: dict | None = None) -> Path:
    """A database file migrated up to ``upto`` holding ``audits`` (and the settings rows given)."""
    con = duckdb.connect(str(path))
    try:
        migrations.migrate(con, upto=upto)
        record_with_old_code(con, audits)
        for key, value in (settings or {}).items():
            con.execute("UPDATE settings SET value = ? WHERE key = ?", [str(value), key])
    finally:
        con.close()
    return path
