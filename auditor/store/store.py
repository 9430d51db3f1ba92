"""`Store`: the DuckDB database that keeps every span, trajectory and attribution.

    >>> from auditor.testing.audits import synthetic_audit, synthetic_trajectory
    >>> audit = synthetic_audit(synthetic_trajectory(1))           # made-up scores, no model
    >>> with Store(":memory:") as store:                           # or a path: Store("audit.duckdb")
    ...     store.record_audit(audit)   # verdicts=check_audit(audit, policy).verdicts, policy=policy: judged
    ...     store.query("SELECT count(DISTINCT action_id) FROM action_drivers")
    (['count(DISTINCT action_id)'], [(5,)])

Writes are idempotent (spans are unique on (trace_id, span_id), trajectories on their id and
content hash, audits on (run_id, trajectory_id): recording the same thing twice stores it once)
and transactional (one transaction per run: a crash leaves no half-written run). Writes take a
lock, so collectors may call `add_spans` from several threads.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from auditor.audit.schema import TrajectoryAudit
from auditor.store import ingest, records
from auditor.store.errors import NotFound, StoreError
from auditor.store.rebuild import rebuild_audit
from auditor.store.migrations import migrate, pending
from auditor.store.sql import check_read_only
from auditor.trajectory import Trajectory

DEFAULT_DB_NAME = "auditor.duckdb"
ENV_VAR = "AUDITOR_DB"


def default_db_path() -> Path:
    """``$AUDITOR_DB`` if set, else ``./auditor.duckdb`` in the working directory."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else Path.cwd() / DEFAULT_DB_NAME


class Store:
    """A DuckDB database of audits. Opening it writable runs pending migrations.

    ``path`` may be ``":memory:"`` (tests). ``read_only=True`` opens an existing database without
    taking the write lock; ``external_access=False`` additionally forbids SQL from touching files
    (what `audit query` uses).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, read_only: bool = False, *,
                 external_access: bool = True) -> None:
        self.path = str(path) if path is not None else str(default_db_path())
        self.read_only = read_only
        self.in_memory = self.path == ":memory:"
        if read_only and not self.in_memory and not Path(self.path).exists():
            raise StoreError(f"no auditor database at {self.path} (run `audit trace FILE` first, or pass --db)")
        if not self.in_memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {}
        if not external_access:
            config["enable_external_access"] = False
        try:
            self._con = duckdb.connect(self.path, read_only=read_only and not self.in_memory, config=config)
        except duckdb.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self.migrated: list[str] = []
        if read_only:
            self.pending_migrations = pending(self._con)
            if "m001_initial" in self.pending_migrations:
                self._con.close()
                raise StoreError(f"{self.path} is not an auditor database (no migrations applied)")
        else:
            self.migrated = migrate(self._con)
            self.pending_migrations = []

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._con.close()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The raw connection (for advanced use; hold no reference past `close()`)."""
        return self._con

    def __repr__(self) -> str:
        return f"Store({self.path!r}, read_only={self.read_only})"

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            self._require_writable()
            self._con.execute("BEGIN TRANSACTION")
            try:
                yield self._con
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            else:
                self._con.execute("COMMIT")

    def _require_writable(self) -> None:
        if self.read_only:
            raise StoreError("this store was opened read-only")

    def _insert(self, table: str, data: pa.Table, columns: Sequence[str] | None = None,
                select: str | None = None, where: str = "") -> int:
        """Bulk insert an Arrow table (one statement). Returns the number of rows inserted."""
        if data.num_rows == 0:
            return 0
        name = f"_in_{table}"
        cols = list(columns or data.column_names)
        self._con.register(name, data)
        try:
            sel = select or ", ".join(f'"{c}"' for c in cols)
            row = self._con.execute(
                f"INSERT INTO {table} ({', '.join(cols)}) SELECT {sel} FROM {name} AS src {where}"
            ).fetchone()
        finally:
            self._con.unregister(name)
        return int(row[0]) if row else 0

    # -- spans -----------------------------------------------------------------------------------
    def add_spans(self, spans: Sequence[Any]) -> int:
        """Store raw spans (SpanRecord or dicts); returns how many were new. Thread-safe; a span
        already stored (same trace_id and span_id) is left as it is."""
        spans = list(spans)
        if not spans:
            return 0
        data = ingest.spans_table(spans)
        cols = ("trace_id, span_id, parent_span_id, name, kind, start_time_unix_nano, end_time_unix_nano, "
                "start_time, duration_ms, attributes, events, links, status, resource, scope, source")
        with self._transaction() as con:
            con.register("_spans_in", data)
            try:
                # the primary key's index finds what is already stored (no scan of the table)
                added = con.execute(
                    f"INSERT OR IGNORE INTO spans ({cols}, ingested_at) SELECT {cols}, now() "
                    f"FROM ({ingest.SPANS_SELECT.replace('{source}', '_spans_in')})").fetchone()[0]
            finally:
                con.unregister("_spans_in")
        return int(added)

    # -- trajectories ----------------------------------------------------------------------------
    def add_trajectories(self, trajs: Sequence[Trajectory]) -> int:
        """Store trajectories (messages and actions too); returns how many were new or changed.
        The same trajectory twice is stored once; a changed one (same id) replaces the old."""
        trajs = list(trajs)
        if not trajs:
            return 0
        with self._transaction() as con:
            return self._upsert_trajectories(con, trajs)

    def _upsert_trajectories(self, con: duckdb.DuckDBPyConnection, trajs: Sequence[Trajectory]) -> int:
        return records.upsert_trajectories(con, ingest.trajectory_tables(trajs))

    # -- audits ----------------------------------------------------------------------------------
    def record_audit(self, audit: TrajectoryAudit, verdicts: Sequence[Any] | None = None, *,
                     policy: Any = None) -> None:
        """Store one audit (run, trajectory, segments, attributions, token scores) in one transaction.

        ``verdicts``: the check's verdicts on its actions (`auditor.check.ActionVerdict`s, or dicts
        with their fields) and ``policy`` the `Policy` (or its dict) that judged them: stored in
        `action_verdicts`, which `unsupported_actions` reads. The store judges nothing itself;
        without verdicts the audit is in no verdict view."""
        self.record_audits([audit], None if verdicts is None else [verdicts], policy=policy)

    def record_audits(self, audits: Sequence[TrajectoryAudit], verdicts: Sequence[Sequence[Any] | None] | None = None,
                      *, policy: Any = None) -> int:
        """Store audits, one transaction per run id. Re-recording a (run_id, trajectory_id) replaces
        what was stored for it (its verdicts too), so a rerun after a crash resumes cleanly.
        ``verdicts``, when given, holds each audit's verdicts (or None), in the order of ``audits``,
        all judged by ``policy`` (see `record_audit`). Returns how many (run, trajectory) pairs
        were written."""
        audits = list(audits)
        judged = [None] * len(audits) if verdicts is None else list(verdicts)
        if len(judged) != len(audits):
            raise ValueError(f"{len(judged)} verdict lists for {len(audits)} audits")
        groups: dict[str, list[tuple[TrajectoryAudit, Sequence[Any] | None]]] = {}
        for a, v in zip(audits, judged):
            groups.setdefault(a.run.run_id, []).append((a, v))
        written = 0
        for group in groups.values():
            with self._lock:
                self._require_writable()
                tables = records.audit_record(self._con, [a for a, _ in group], [v for _, v in group],
                                              policy=policy, now=datetime.now(timezone.utc))
            written += self.record_tables(tables)
        return written

    def record_tables(self, tables: Mapping[str, pa.Table]) -> int:
        """Store an audit record already in the store's Arrow form (`auditor.store.records`: the
        tables `record_audits` writes, e.g. read back from a Parquet shard of a results lake) in
        one transaction, by `record_audits`' rules. Returns how many (run, trajectory) audits it held."""
        with self._transaction() as con:
            return records.write_record(con, tables)

    def record_verdicts(self, run_id: str, trajectory_id: str, verdicts: Sequence[Any], *, policy: Any = None) -> int:
        """Replace the verdicts of a stored audit (e.g. judged again under another policy); returns
        how many were written. Raises `NotFound` when the run holds no audit of the trajectory."""
        source, policy_data = ingest.policy_fields(policy)
        with self._transaction() as con:
            if not con.execute("SELECT count(*) FROM audits WHERE run_id = ? AND trajectory_id = ?",
                               [run_id, trajectory_id]).fetchone()[0]:
                raise NotFound(f"no audit of trajectory {trajectory_id!r} in run {run_id!r}")
            con.execute(f"DELETE FROM {ingest.VERDICT_TABLE} WHERE run_id = ? AND trajectory_id = ?",
                        [run_id, trajectory_id])
            return self._insert_verdicts(run_id, trajectory_id, verdicts, source, policy_data,
                                         datetime.now(timezone.utc))

    def _verdict_columns(self) -> list[tuple[str, str]]:
        """``(name, type)`` of `action_verdicts` as the database has it now (empty before m005)."""
        with self._lock:
            return records.verdict_columns(self._con)

    def _insert_verdicts(self, run_id: str, trajectory_id: str, verdicts: Sequence[Any], source: str | None,
                         policy: dict[str, Any] | None, now: datetime) -> int:
        data = records.verdict_table(self._con, self._verdict_columns(), run_id, trajectory_id, verdicts,
                                     policy_source=source, policy=policy, now=now)
        return self._insert(ingest.VERDICT_TABLE, data)

    def verdicts(self, run_id: str, trajectory_id: str) -> dict[str, dict[str, Any]]:
        """The recorded verdicts of a stored audit, by action id, as `action_verdicts` holds them
        (JSON columns parsed); empty when it was recorded without verdicts."""
        columns = self._verdict_columns()
        if not columns:
            return {}
        json_cols = [c for c, t in columns if t == "JSON"]
        out = {}
        for row in self._rows(f"SELECT * FROM {ingest.VERDICT_TABLE} WHERE run_id = ? AND trajectory_id = ? "
                              "ORDER BY action_id", [run_id, trajectory_id]):
            for c in json_cols:
                row[c] = json.loads(row[c]) if row[c] is not None else None
            out[row["action_id"]] = row
        return out

    def delete_run(self, run_id: str) -> bool:
        """Remove a run and everything recorded for it (trajectories and spans stay)."""
        with self._transaction() as con:
            found = con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchone()[0]
            for table in (ingest.VERDICT_TABLE, *ingest.AUDIT_TABLES, "runs"):
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        return bool(found)

    def audited(self, run_id: str) -> dict[str, str]:
        """Trajectories already recorded for a run: {trajectory_id: content_sha256} (for resuming)."""
        with self._lock:
            return dict(self._con.execute(
                "SELECT trajectory_id, content_sha256 FROM audits WHERE run_id = ?", [run_id]).fetchall())

    # -- settings --------------------------------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        with self._lock:
            row = self._con.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
        return row[0] if row else default

    def set_setting(self, key: str, value: Any, description: str | None = None) -> None:
        with self._transaction() as con:
            old = con.execute("SELECT description FROM settings WHERE key = ?", [key]).fetchone()
            con.execute("DELETE FROM settings WHERE key = ?", [key])
            con.execute("INSERT INTO settings VALUES (?, ?, ?)",
                        [key, str(value), description if description is not None else (old[0] if old else None)])

    # -- reading ---------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN ...) and return
        ``(columns, rows)``. Anything else raises `QueryRefused`. On a writable store the statement
        runs inside a transaction that is rolled back."""
        sql = check_read_only(sql)
        with self._lock:
            if self.read_only:
                cur = self._con.execute(sql, params or [])
                return [d[0] for d in cur.description or []], cur.fetchall()
            self._con.execute("BEGIN TRANSACTION")
            try:
                cur = self._con.execute(sql, params or [])
                return [d[0] for d in cur.description or []], cur.fetchall()
            finally:
                self._con.execute("ROLLBACK")

    def _rows(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._con.execute(sql, params or [])
            cols = [d[0] for d in cur.description or []]
            return [dict(zip(cols, r)) for r in cur.fetchall()]

    def runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, with counts of trajectories, actions and unsupported actions."""
        sql = """
            WITH t AS (SELECT run_id, count(*) AS trajectories FROM audits GROUP BY run_id),
                 a AS (SELECT run_id, count(*) AS actions FROM action_audits GROUP BY run_id),
                 u AS (SELECT run_id, count(*) AS unsupported FROM unsupported_actions GROUP BY run_id)
            SELECT r.run_id, r.created_at, r.model, r.method, r.hops, r.auditor_version, r.device, r.dtype,
                   coalesce(t.trajectories, 0) AS trajectories, coalesce(a.actions, 0) AS actions,
                   coalesce(u.unsupported, 0) AS unsupported
            FROM runs r LEFT JOIN t USING (run_id) LEFT JOIN a USING (run_id) LEFT JOIN u USING (run_id)
            ORDER BY r.created_at DESC, r.run_id
        """
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._rows(sql)

    def counts(self) -> dict[str, int]:
        """Row count of every table."""
        with self._lock:
            names = [r[0] for r in self._con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY table_name").fetchall()]
            return {n: self._con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}

    def relations(self, views: bool = True) -> list[str]:
        """Names of the user-facing tables (and views)."""
        sql = "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT table_name LIKE '\\_%' ESCAPE '\\'"
        if views:
            sql += " UNION ALL SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal"
        with self._lock:
            return sorted(r[0] for r in self._con.execute(sql).fetchall())

    def export_parquet(self, directory: str | os.PathLike[str], tables: Sequence[str] | None = None,
                       views: bool = True) -> list[Path]:
        """Write each table (and view) to ``directory/<name>.parquet``; returns the files written."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        known = self.relations(views=True)
        names = list(tables) if tables else self.relations(views=views)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise StoreError(f"unknown table(s) {', '.join(unknown)}; known: {', '.join(known)}")
        files = []
        with self._lock:
            for name in names:
                path = out / f"{name}.parquet"
                target = str(path).replace("'", "''")
                self._con.execute(f"COPY (SELECT * FROM \"{name}\") TO '{target}' (FORMAT parquet)")
                files.append(path)
        return files

    # -- reconstructing audits -------------------------------------------------------------------
    def load_audit(self, run_id: str, trajectory_id: str, action_ids: Sequence[str] | None = None) -> TrajectoryAudit:
        """Rebuild the `TrajectoryAudit` recorded for (run, trajectory), optionally only some actions."""
        return rebuild_audit(self._rows, run_id, trajectory_id, action_ids)

    def locate_action(self, action_id: str, run_id: str | None = None,
                      trajectory_id: str | None = None) -> tuple[str, str]:
        """(run_id, trajectory_id) of the newest recorded attribution of ``action_id``."""
        sql = ("SELECT aa.run_id, aa.trajectory_id FROM action_audits aa JOIN runs r USING (run_id) "
               "WHERE aa.action_id = ?")
        params: list[Any] = [action_id]
        if run_id:
            sql += " AND aa.run_id = ?"
            params.append(run_id)
        if trajectory_id:
            sql += " AND aa.trajectory_id = ?"
            params.append(trajectory_id)
        sql += " ORDER BY r.created_at DESC, r.recorded_at DESC, aa.trajectory_id"
        found = self._rows(sql, params)
        if not found:
            stored = self._rows("SELECT trajectory_id FROM actions WHERE action_id = ?", [action_id])
            where = f" in run {run_id}" if run_id else ""
            if stored:
                raise NotFound(f"action {action_id!r} is stored but has no attribution{where} "
                               "(run `audit trace` on its trajectory)")
            raise NotFound(f"no action {action_id!r}{where}; list them with "
                           "`audit query \"SELECT action_id, action_summary FROM action_drivers WHERE rank = 1\"`")
        first = found[0]["run_id"]
        trajs = sorted({f["trajectory_id"] for f in found if f["run_id"] == first})
        if len(trajs) > 1:
            raise StoreError(f"action id {action_id!r} is in several trajectories of run {first} "
                             f"({', '.join(trajs)}); pass a trajectory id")
        return first, trajs[0]

    def action_view(self, action_id: str, run_id: str | None = None,
                    trajectory_id: str | None = None) -> TrajectoryAudit:
        """The audit slice for one action (newest run unless ``run_id``): full segments and tokens,
        only that action's attribution. `auditor.report.export.action_export` turns it into JSON."""
        rid, tid = self.locate_action(action_id, run_id, trajectory_id)
        return self.load_audit(rid, tid, action_ids=[action_id])
