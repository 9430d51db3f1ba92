"""One write of audits as Arrow tables, and the rules for storing it.

A *record* is a mapping ``{table name: Arrow table}`` with the store's own tables and columns:
``runs``, ``trajectories``, ``messages``, ``actions``, the audit tables (`ingest.AUDIT_TABLES`) and
``action_verdicts``. `audit_record` makes one from audits and the check's verdicts (through
`auditor.store.ingest`, column by column); `write_record` stores one inside a transaction.
`Store.record_audits` is the two in a row; a Parquet shard of a results lake
(`auditor.distributed`) is one record written to files, and `Store.record_tables` stores it back:
so both paths convert and store with the same code and the same rules.

The rules (those `record_audits` always had): a run's row is replaced, keeping the earliest
``created_at``; a trajectory is stored once per content (a changed one replaces the old version);
re-recording a (run_id, trajectory_id) replaces everything stored for it, its verdicts included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from auditor.audit.schema import TrajectoryAudit
from auditor.store import ingest

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

#: The tables a record may hold, in the order `write_record` inserts them (parents first); a record
#: read from a results lake also carries its `lake_batches` row (stored in the same transaction).
TRAJECTORY_TABLES = ("trajectories", "messages", "actions")
LAKE_TABLE = "lake_batches"
RECORD_TABLES = ("runs", *TRAJECTORY_TABLES, *reversed(ingest.AUDIT_TABLES), ingest.VERDICT_TABLE, LAKE_TABLE)


def verdict_columns(con: "duckdb.DuckDBPyConnection") -> list[tuple[str, str]]:
    """``(name, type)`` of `action_verdicts` as the database has it now (empty before m005)."""
    return [(r[0], r[1]) for r in con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ? "
        "ORDER BY column_index", [ingest.VERDICT_TABLE]).fetchall()]


def verdict_table(con: "duckdb.DuckDBPyConnection", columns: Sequence[tuple[str, str]], run_id: str,
                  trajectory_id: str, verdicts: Sequence[Any], *, policy_source: str | None,
                  policy: dict[str, Any] | None, now: datetime) -> pa.Table:
    """The verdicts' rows of `action_verdicts` (exactly ``columns``, typed as the table), made by
    DuckDB from `ingest.verdict_docs` (strict: a field of the wrong type is an error, not a NULL)."""
    names = [c for c, _ in columns]
    docs = ingest.verdict_docs(run_id, trajectory_id, verdicts, names, policy_source=policy_source,
                               policy=policy, now=now)
    structure = ingest.json_structure(columns).replace("'", "''")
    name = "_verdicts_in"
    con.register(name, docs)
    try:
        return con.sql(f"SELECT unnest(json_transform_strict(doc, '{structure}')) FROM {name}").to_arrow_table()
    finally:
        con.unregister(name)


def audit_record(con: "duckdb.DuckDBPyConnection", audits: Sequence[TrajectoryAudit],
                 verdicts: Sequence[Sequence[Any] | None] | None = None, *, policy: Any = None,
                 now: datetime) -> dict[str, pa.Table]:
    """The record of ``audits`` (each with its verdicts, or None) judged by ``policy``; ``con`` is
    a migrated DuckDB connection (its `action_verdicts` columns are the ones filled). The last
    audit of a (run_id, trajectory_id) wins."""
    audits = list(audits)
    judged = [None] * len(audits) if verdicts is None else list(verdicts)
    if len(judged) != len(audits):
        raise ValueError(f"{len(judged)} verdict lists for {len(audits)} audits")
    latest: dict[tuple[str, str], tuple[TrajectoryAudit, Sequence[Any] | None]] = {}
    for a, v in zip(audits, judged):
        latest[(a.run.run_id, a.trajectory.id)] = (a, v)
    group = [a for a, _ in latest.values()]
    out: dict[str, pa.Table] = {"runs": ingest.run_table(group, now)}
    out.update(ingest.trajectory_tables([a.trajectory for a in group], now))
    out.update(ingest.audit_tables(group, now))
    source, policy_data = ingest.policy_fields(policy)
    columns = verdict_columns(con)
    parts = [verdict_table(con, columns, a.run.run_id, a.trajectory.id, v, policy_source=source,
                           policy=policy_data, now=now)
             for a, v in latest.values() if v is not None and columns]
    parts = [p for p in parts if p.num_rows]
    if parts:
        out[ingest.VERDICT_TABLE] = pa.concat_tables(parts)
    return out


def _insert(con: "duckdb.DuckDBPyConnection", table: str, data: pa.Table) -> int:
    """Bulk insert an Arrow table by column name (one statement)."""
    if data.num_rows == 0:
        return 0
    name = f"_in_{table}"
    cols = ", ".join(f'"{c}"' for c in data.column_names)
    con.register(name, data)
    try:
        rows = con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {name}").fetchall()
    finally:
        con.unregister(name)
    return int(rows[0][0]) if rows else 0


def upsert_trajectories(con: "duckdb.DuckDBPyConnection", tables: Mapping[str, pa.Table]) -> int:
    """Store the trajectories of a record (with their messages and actions) whose content is new
    or changed; returns how many. The caller holds the transaction."""
    trajs = tables.get("trajectories")
    if trajs is None or trajs.num_rows == 0:
        return 0
    con.register("_traj_in", trajs.select(["trajectory_id", "content_sha256"]))
    try:
        changed = [r[0] for r in con.execute(
            "SELECT i.trajectory_id FROM _traj_in i LEFT JOIN trajectories t USING (trajectory_id) "
            "WHERE t.content_sha256 IS DISTINCT FROM i.content_sha256").fetchall()]
        if not changed:
            return 0
        con.execute("CREATE OR REPLACE TEMP TABLE _traj_changed AS SELECT DISTINCT trajectory_id FROM _traj_in "
                    "WHERE list_contains(?, trajectory_id)", [changed])
    finally:
        con.unregister("_traj_in")
    try:
        for table in ("messages", "actions", "trajectories"):
            con.execute(f"DELETE FROM {table} WHERE trajectory_id IN (SELECT trajectory_id FROM _traj_changed)")
        keep = pa.array(changed, pa.string())
        for table in TRAJECTORY_TABLES:
            data = tables.get(table)
            if data is not None and data.num_rows:
                _insert(con, table, data.filter(pc.is_in(data["trajectory_id"], value_set=keep)))
    finally:
        con.execute("DROP TABLE IF EXISTS _traj_changed")
    return len(changed)


def write_record(con: "duckdb.DuckDBPyConnection", tables: Mapping[str, pa.Table]) -> int:
    """Store a record by the rules above; returns how many (run, trajectory) audits it held. The
    caller holds the transaction (a record is stored whole or not at all)."""
    unknown = set(tables) - set(RECORD_TABLES)
    if unknown:
        raise ValueError(f"not tables of an audit record: {', '.join(sorted(unknown))}")
    runs = tables.get("runs")
    if runs is not None and runs.num_rows:
        ids = runs.column("run_id").to_pylist()
        old = dict(con.execute("SELECT run_id, created_at FROM runs WHERE list_contains(?, run_id)", [ids]).fetchall())
        con.execute("DELETE FROM runs WHERE list_contains(?, run_id)", [ids])
        _insert(con, "runs", runs)
        for run_id, created in old.items():  # a resumed run keeps the time it started
            if created is not None:
                con.execute("UPDATE runs SET created_at = least(created_at, ?) WHERE run_id = ?", [created, run_id])
    upsert_trajectories(con, tables)
    audits = tables.get("audits")
    pairs = audits.select(["run_id", "trajectory_id"]) if audits is not None else None
    if pairs is not None and pairs.num_rows:
        con.register("_pairs_in", pairs)
        try:  # only pairs already stored have rows to replace (the common case, none, deletes nothing)
            stored = con.execute("SELECT count(*) FROM audits a JOIN _pairs_in p "
                                 "ON a.run_id = p.run_id AND a.trajectory_id = p.trajectory_id").fetchall()[0][0]
            for table in (ingest.VERDICT_TABLE, *ingest.AUDIT_TABLES) if stored else ():
                con.execute(f"DELETE FROM {table} USING _pairs_in p "
                            f"WHERE {table}.run_id = p.run_id AND {table}.trajectory_id = p.trajectory_id").fetchall()
        finally:
            con.unregister("_pairs_in")
    for table in RECORD_TABLES[1 + len(TRAJECTORY_TABLES):]:
        data = tables.get(table)
        if data is not None:
            _insert(con, table, data)
    return 0 if pairs is None else pairs.num_rows
