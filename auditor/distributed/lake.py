"""`audit query --lake DIR`: the store's tables and views over a results lake's Parquet shards.

    from auditor.distributed import query_lake
    columns, rows = query_lake("results/", "SELECT action_id, driver_label, share FROM action_drivers")

Nothing is imported: an in-memory DuckDB gets the store's schema from the store's own migrations
(`auditor.store.migrations.migrate`), then each table that the lake has shards of is replaced by a
view of the same name and column types over ``read_parquet`` of its committed shards. The store's
views (``action_drivers``, ``unsupported_actions``, ...) are left as the migrations made them and
now read the shards: the same SQL, the same column names, the same answers as on an ingested store.

The store keeps one row per key; a lake may hold a key twice (a trajectory audited under two
policies, a rerun with ``force``, a trajectory seen by two runs). The views keep what ingesting the
batches in commit order would keep (`audit ingest`): per run and per (run, trajectory), the rows
of the latest committed batch that holds it, with a run's earliest ``created_at``; per trajectory,
those of the first batch that holds its latest content. ``lake_manifest`` lists every trajectory of every committed batch with its status
and error. SQL can read the lake's files and nothing else.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from auditor.distributed import manifest as mf
from auditor.distributed.locations import open_location
from auditor.store import ingest
from auditor.store.records import TRAJECTORY_TABLES

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

#: (family, key, tables): a family's rows come from one batch per key (the latest), its first
#: table decides which.
FAMILIES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("runs", ("run_id",), ("runs",)),
    ("trajectories", ("trajectory_id",), TRAJECTORY_TABLES),
    ("audits", ("run_id", "trajectory_id"),
     ("audits", *(t for t in ingest.AUDIT_TABLES if t != "audits"), ingest.VERDICT_TABLE)),
)

MANIFEST_VIEW = "lake_manifest"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _manifest_table(records: list[mf.BatchRecord]) -> pa.Table:
    rows = [{"batch_id": r.batch_id, "run_id": r.run_id, "settings_key": r.settings_key,
             "committed_at": r.committed_at, "trajectory_id": t.trajectory_id, "sha256": t.sha256,
             "status": t.status, "error": t.error, "attempt": t.attempt, "final": t.final, "actions": t.actions,
             "seconds": t.seconds, "worker": r.worker.name if r.worker else None,
             "node": r.worker.node if r.worker else None}
            for r in records for t in r.trajectories]
    schema = pa.schema([("batch_id", pa.string()), ("run_id", pa.string()), ("settings_key", pa.string()),
                        ("committed_at", pa.timestamp("us", tz="UTC")), ("trajectory_id", pa.string()),
                        ("sha256", pa.string()), ("status", pa.string()), ("error", pa.string()),
                        ("attempt", pa.int32()), ("final", pa.bool_()), ("actions", pa.int32()),
                        ("seconds", pa.float64()), ("worker", pa.string()), ("node", pa.string())])
    return pa.Table.from_pylist(rows, schema=schema)


def open_lake(results: str | os.PathLike[str]) -> "duckdb.DuckDBPyConnection":
    """An in-memory DuckDB connection whose tables and views are the store's, over the lake at
    ``results`` (a directory or URI). Raises FileNotFoundError when it holds no committed batch."""
    import duckdb

    from auditor.store.migrations import migrate

    root = open_location(results)
    records = mf.read_records(root)
    if not records:
        raise FileNotFoundError(f"no results lake at {root.uri} (no {mf.MANIFEST_DIR}/ records; "
                                "run `audit trace --ray --results DIR` first)")
    con = duckdb.connect(":memory:")
    migrate(con)
    files: dict[str, list[str]] = {}
    seq_of: dict[str, int] = {}  # shard -> the latest commit listing it
    for seq, rec in enumerate(records):
        for table, rel in rec.shards.items():
            path = root.join(rel).duckdb_path
            if path not in seq_of:
                files.setdefault(table, []).append(path)
            seq_of[path] = seq
    seq_rows = list(seq_of.items())
    con.execute("CREATE TABLE _lake_files (file VARCHAR, seq INTEGER)")
    if seq_rows:
        con.executemany("INSERT INTO _lake_files VALUES (?, ?)", seq_rows)
    con.register("_lake_manifest_in", _manifest_table(records))
    con.execute(f"CREATE TABLE {MANIFEST_VIEW} AS SELECT * FROM _lake_manifest_in")
    con.unregister("_lake_manifest_in")
    for family, key, tables in FAMILIES:
        if not files.get(tables[0]):
            continue
        for table in tables:
            if files.get(table):
                _replace_table(con, table, files[table])
        con.execute(f"CREATE VIEW _lake_win_{family} AS {_winners(family, key, tables[0])}")
        for table in tables:
            if files.get(table):
                _table_view(con, table, family, key)
    con.execute(f"DROP TABLE IF EXISTS {_COLUMNS}")
    if not root.local:
        try:  # s3://, gs://, ... (needs DuckDB's httpfs extension, fetched on first use when reachable)
            con.execute("LOAD httpfs")
        except duckdb.Error:
            pass
    prefix = root.duckdb_path.rstrip("/") + "/"
    con.execute(f"SET allowed_directories = [{_lit(prefix)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _winners(family: str, key: tuple[str, ...], table: str) -> str:
    """(key, seq): the batch whose rows a key shows. The latest, as the store replaces runs and
    audits; for a trajectory, the first batch of its latest content: the store keeps a trajectory
    it already holds unchanged (with its first ``ingested_at``) and replaces it when it changed."""
    keys = ", ".join(key)
    if family != "trajectories":
        return f"SELECT {keys}, max(seq) AS seq FROM _lake_raw_{table} GROUP BY {keys}"
    return f"""
        WITH r AS (SELECT trajectory_id, content_sha256, seq FROM _lake_raw_{table}),
        latest AS (SELECT trajectory_id, arg_max(content_sha256, seq) AS sha FROM r GROUP BY trajectory_id),
        changed AS (SELECT r.trajectory_id, max(r.seq) AS seq FROM r JOIN latest l USING (trajectory_id)
                    WHERE r.content_sha256 IS DISTINCT FROM l.sha GROUP BY r.trajectory_id)
        SELECT r.trajectory_id, min(r.seq) AS seq
        FROM r JOIN latest l USING (trajectory_id) LEFT JOIN changed c USING (trajectory_id)
        WHERE r.content_sha256 IS NOT DISTINCT FROM l.sha AND (c.seq IS NULL OR r.seq > c.seq)
        GROUP BY r.trajectory_id"""


#: Each table's columns as the store types them, kept while its view is made.
_COLUMNS = "_lake_columns"


def _replace_table(con: "duckdb.DuckDBPyConnection", table: str, paths: list[str]) -> None:
    """Drop the store's (empty) table; keep its columns; make ``_lake_raw_<table>``: every row of its
    committed shards with the batch's commit order ``seq``."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {_COLUMNS} (table_name VARCHAR, column_name VARCHAR, "
                "data_type VARCHAR, column_index INTEGER)")
    con.execute(f"INSERT INTO {_COLUMNS} SELECT table_name, column_name, data_type, column_index FROM duckdb_columns() "
                "WHERE schema_name = 'main' AND table_name = ?", [table])
    con.execute(f"DROP TABLE {table}")
    listing = "[" + ", ".join(_lit(p) for p in paths) + "]"
    con.execute(f"CREATE VIEW _lake_raw_{table} AS SELECT r.*, f.seq FROM read_parquet({listing}, filename = true, "
                f"union_by_name = true) r JOIN _lake_files f ON f.file = r.filename")


def _table_view(con: "duckdb.DuckDBPyConnection", table: str, family: str, key: tuple[str, ...]) -> None:
    """The view named like the store's table: its columns, in its order and types (NULL for a column
    no shard has), from the winning batch of each key."""
    present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM _lake_raw_{table}").fetchall()}
    cols = con.execute(f"SELECT column_name, data_type FROM {_COLUMNS} WHERE table_name = ? ORDER BY column_index",
                       [table]).fetchall()

    def expr(name: str, typ: str) -> str:
        if table == "runs" and name == "created_at":  # a resumed run keeps the time it started
            return f'CAST(min(r."created_at") OVER (PARTITION BY r.run_id) AS {typ}) AS "created_at"'
        return f'CAST(r."{name}" AS {typ}) AS "{name}"' if name in present else f'CAST(NULL AS {typ}) AS "{name}"'

    match = " AND ".join(f"w.{k} = r.{k}" for k in key)
    select = ", ".join(expr(c, t) for c, t in cols)
    if table == "runs":
        sql = (f"SELECT {select} FROM _lake_raw_runs r "
               "QUALIFY row_number() OVER (PARTITION BY r.run_id ORDER BY r.seq DESC) = 1")
    else:
        sql = (f"SELECT {select} FROM _lake_raw_{table} r "
               f"WHERE EXISTS (SELECT 1 FROM _lake_win_{family} w WHERE {match} AND w.seq = r.seq)")
    con.execute(f"CREATE VIEW {table} AS {sql}")


def query_lake(results: str | os.PathLike[str], sql: str, params: list[Any] | None = None
               ) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one read-only statement over the lake (`audit query --lake`); ``(columns, rows)``.
    Anything but a read raises `auditor.store.QueryRefused`."""
    from auditor.store.sql import check_read_only

    sql = check_read_only(sql)
    con = open_lake(results)
    try:
        cur = con.execute(sql, params or [])
        return [d[0] for d in cur.description or []], cur.fetchall()
    finally:
        con.close()
