"""`audit ingest RESULTS`: merge a results lake into the DuckDB store, one transaction per batch.

Each committed batch's shards are read back (pyarrow, from any filesystem the lake is on) and
stored with `Store.record_tables`, the write path `Store.record_audits` uses: by the same rules
(a (run, trajectory) re-recorded replaces what was stored for it, a trajectory is stored once per
content, a run keeps its earliest ``created_at``), so ingesting twice, or ingesting what `audit
trace` already stored, leaves one copy. Batches go in commit order, so the store keeps what the
lake's views show (`auditor.distributed.lake`). Each batch stored is noted in the store's
``lake_batches`` table in the same transaction, so ingesting again stores only the batches
committed since.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from auditor.distributed import manifest as mf
from auditor.distributed.locations import open_location
from auditor.store.records import LAKE_TABLE


@dataclass
class IngestReport:
    """What `ingest_lake` did: batches stored, batches already there, audits stored."""

    batches: int = 0
    ingested: int = 0
    skipped: int = 0
    audits: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)  # final failures no later batch audited


def _lake_row(lake: str, rec: mf.BatchRecord, audits: int) -> pa.Table:
    return pa.table({"lake": [lake], "record": [mf.record_name(rec.batch_id, rec.attempt)], "batch_id": [rec.batch_id],
                     "run_id": [rec.run_id], "committed_at": pa.array([rec.committed_at], pa.timestamp("us", tz="UTC")),
                     "audits": pa.array([audits], pa.int32()),
                     "ingested_at": pa.array([mf.now()], pa.timestamp("us", tz="UTC"))})


def ingest_lake(results: str | os.PathLike[str], store: Any,
                on_batch: Callable[[mf.BatchRecord, bool], Any] | None = None) -> IngestReport:
    """Store every committed batch of the lake at ``results`` in ``store`` (a writable `Store`)."""
    root = open_location(results)
    records = mf.read_records(root)
    if not records:
        raise FileNotFoundError(f"no results lake at {root.uri} (no {mf.MANIFEST_DIR}/ records)")
    report = IngestReport(batches=len(records))
    _, rows = store.query(f"SELECT record FROM {LAKE_TABLE} WHERE lake = ?", [root.uri])
    done = {r[0] for r in rows}
    audited = mf.audited_keys(records)
    for rec in records:
        report.failed.extend({"batch_id": rec.batch_id, "run_id": rec.run_id, "trajectory_id": t.trajectory_id,
                              "error": t.error} for t in rec.trajectories
                             if t.status == "failed" and t.final and (rec.settings_key, t.sha256) not in audited)
        if "audits" not in rec.shards:
            continue
        skip = mf.record_name(rec.batch_id, rec.attempt) in done
        if skip:
            report.skipped += 1
        else:
            tables = {t: pq.read_table(root.join(rel).path, filesystem=root.fs) for t, rel in rec.shards.items()}
            tables[LAKE_TABLE] = _lake_row(root.uri, rec, tables["audits"].num_rows)
            report.audits += store.record_tables(tables)  # the batch and its lake_batches row, one transaction
            report.ingested += 1
        if on_batch is not None:
            on_batch(rec, skip)
    return report
