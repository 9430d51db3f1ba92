"""`audit ingest RESULTS`: merge a results lake into the DuckDB store, one transaction per batch.

Each committed batch's shards are read back (pyarrow, from any filesystem the lake is on) and
stored with `Store.record_tables`, the write path `Store.record_audits` uses: by the same rules
(a (run, trajectory) re-recorded replaces what was stored for it, a trajectory is stored once per
content, a run keeps its earliest ``created_at``), so ingesting twice, or ingesting what `audit
trace` already stored, leaves one copy. Batches go in commit order, so the store keeps what the
lake's views show (`auditor.distributed.lake`). A batch whose audits the store already holds as
recorded (same run, trajectory and ``recorded_at``) is skipped without rewriting it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from auditor.distributed import manifest as mf
from auditor.distributed.locations import open_location


@dataclass
class IngestReport:
    """What `ingest_lake` did: batches stored, batches already there, audits stored."""

    batches: int = 0
    ingested: int = 0
    skipped: int = 0
    audits: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)  # final failures no later batch audited


def _already_stored(store: Any, audits: pa.Table) -> bool:
    keys = pc.binary_join_element_wise(
        audits["run_id"], audits["trajectory_id"],
        pc.cast(pc.cast(audits["recorded_at"], pa.int64()), pa.string()), "\x00").to_pylist()
    _, rows = store.query(
        "SELECT count(*) FROM audits WHERE list_contains(?, concat_ws(chr(0), run_id, trajectory_id, "
        "CAST(epoch_us(recorded_at) AS VARCHAR)))", [keys])
    return rows[0][0] == len(set(keys))


def ingest_lake(results: str | os.PathLike[str], store: Any,
                on_batch: Callable[[mf.BatchRecord, bool], Any] | None = None) -> IngestReport:
    """Store every committed batch of the lake at ``results`` in ``store`` (a writable `Store`)."""
    root = open_location(results)
    records = mf.read_records(root)
    if not records:
        raise FileNotFoundError(f"no results lake at {root.uri} (no {mf.MANIFEST_DIR}/ records)")
    report = IngestReport(batches=len(records))
    audited = mf.audited_keys(records)
    for rec in records:
        report.failed.extend({"batch_id": rec.batch_id, "run_id": rec.run_id, "trajectory_id": t.trajectory_id,
                              "error": t.error} for t in rec.trajectories
                             if t.status == "failed" and t.final and (rec.settings_key, t.sha256) not in audited)
        if "audits" not in rec.shards:
            continue
        tables = {table: pq.read_table(root.join(rel).path, filesystem=root.fs) for table, rel in rec.shards.items()}
        skip = _already_stored(store, tables["audits"])
        if skip:
            report.skipped += 1
        else:
            report.audits += store.record_tables(tables)
            report.ingested += 1
        if on_batch is not None:
            on_batch(rec, skip)
    return report
