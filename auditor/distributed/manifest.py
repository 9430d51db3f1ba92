"""The results lake's layout and its manifest: what was committed, by which run, with which errors.

    RESULTS/
      <table>/<batch_id>.parquet      one shard per store table per committed batch
      _manifest/<batch_id>.a<N>.json  one `BatchRecord` per attempt at a batch (the commit itself)
      _runs/<run_id>.json             one `RunSummary` per run (rewritten by each execution)

A batch is a handful of trajectories audited by one worker; its shards hold exactly the rows
`Store.record_audits` would write for them (`auditor.store.records`), in the store's tables and
columns. A batch counts only once its record is in ``_manifest/``: the record is written after
its shards, so a crash in between leaves files that no reader uses (`audit query --lake` and
`audit ingest` read the shards the records list). Ids are content hashes: a batch's id hashes its
run, its settings and its trajectories' contents, so redoing a lost batch rewrites the same files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

from auditor.distributed.locations import Location

MANIFEST_DIR = "_manifest"
RUNS_DIR = "_runs"


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def settings_key(settings: Mapping[str, Any], policy: Any = None) -> str:
    """What makes two audits of the same trajectory interchangeable: the replay settings a run id
    hashes (`run_id_for`, without the trajectories) and the policy that judged the actions."""
    from auditor.audit.runs import run_id_for

    policy_data = policy.model_dump(mode="json") if hasattr(policy, "model_dump") else policy
    return "set-" + _digest({"run": run_id_for([], settings), "policy": policy_data})[:16]


def record_name(batch: str, attempt: int) -> str:
    """The manifest file of an attempt at a batch: a later attempt (the batch redone after its
    worker died) keeps the earlier one's record, and its error, beside it."""
    return f"{batch}.a{attempt}.json"


def batch_id(run_id: str, key: str, shas: Iterable[str]) -> str:
    """A batch's id: its run, settings key and trajectory contents (order-free)."""
    return "b-" + _digest({"run": run_id, "settings": key, "trajectories": sorted(shas)})[:20]


class TrajectoryEntry(BaseModel):
    """One trajectory of a committed batch."""

    trajectory_id: str
    sha256: str = Field(description="Content hash of the trajectory (`auditor.trajectory.trajectory_sha256`).")
    status: Literal["audited", "failed"]
    error: str | None = Field(None, description="'ErrorType: message' when the audit failed.")
    attempt: int = Field(1, description="Which attempt this was (1 = first).")
    final: bool = Field(True, description="False when a failed trajectory was queued again.")
    actions: int = 0
    seconds: float | None = None


class WorkerInfo(BaseModel):
    """Which worker did the work, and what it held."""

    name: str
    node: str | None = None
    pid: int | None = None
    device: str | None = None
    load_seconds: float | None = Field(None, description="Seconds to build the auditor (load the model).")
    peak_rss_bytes: int | None = Field(None, description="Peak resident memory of the worker process.")
    peak_gpu_bytes: int | None = Field(None, description="Peak GPU memory allocated by torch, when on a GPU.")


class BatchRecord(BaseModel):
    """The commit of one attempt at a batch: its shards and what became of each trajectory."""

    batch_id: str
    attempt: int = 1
    run_id: str
    settings_key: str
    committed_at: datetime
    shards: dict[str, str] = Field(default_factory=dict, description="table -> shard path, relative to the results root.")
    rows: dict[str, int] = Field(default_factory=dict)
    trajectories: list[TrajectoryEntry] = Field(default_factory=list)
    worker: WorkerInfo | None = None
    seconds: float | None = Field(None, description="Seconds the worker spent on the batch.")


class RunSummary(BaseModel):
    """One execution of a run: what it was asked, what it did, what failed and why."""

    run_id: str
    settings_key: str
    settings: dict[str, Any]
    policy_source: str | None = None
    auditor_factory: str | None = None
    started_at: datetime
    finished_at: datetime | None = None
    status: Literal["running", "complete", "incomplete"] = "running"
    trajectories: int = 0
    audited: int = 0
    resumed: int = Field(0, description="Trajectories already in the lake with these settings: skipped.")
    failed: list[TrajectoryEntry] = Field(default_factory=list)
    batches: int = 0
    events: list[str] = Field(default_factory=list, description="Workers lost and replaced, retries, in words.")
    workers: list[WorkerInfo] = Field(default_factory=list)
    seconds: float | None = None
    commit_seconds: float = Field(0.0, description="Driver time spent writing shards and records.")


# -- reading and writing -------------------------------------------------------------------------

def write_json(loc: Location, model: BaseModel) -> None:
    """Write a record so that readers see all of it or none: to a temporary name, then moved."""
    parent = loc.path.rsplit("/", 1)[0]
    loc.fs.create_dir(parent, recursive=True)
    data = model.model_dump_json(indent=1).encode()
    tmp = f"{parent}/.tmp-{loc.path.rsplit('/', 1)[1]}"
    with loc.fs.open_output_stream(tmp) as fh:
        fh.write(data)
    loc.fs.move(tmp, loc.path)


def read_records(root: Location) -> list[BatchRecord]:
    """Every committed batch, in commit order (then id): the order later commits win in."""
    import pyarrow.fs as pafs

    folder = root.join(MANIFEST_DIR)
    infos = root.fs.get_file_info(pafs.FileSelector(folder.path, allow_not_found=True))
    out = []
    for info in infos:
        name = info.path.rsplit("/", 1)[-1]
        if info.type != pafs.FileType.File or not name.endswith(".json") or name.startswith("."):
            continue
        with root.fs.open_input_stream(info.path) as fh:
            out.append(BatchRecord.model_validate_json(fh.read()))
    return sorted(out, key=lambda r: (r.committed_at, r.batch_id, r.attempt))


def read_summary(root: Location, run_id: str) -> RunSummary | None:
    import pyarrow.fs as pafs

    loc = root.join(RUNS_DIR, f"{run_id}.json")
    if root.fs.get_file_info(loc.path).type != pafs.FileType.File:
        return None
    with root.fs.open_input_stream(loc.path) as fh:
        return RunSummary.model_validate_json(fh.read())


def audited_keys(records: Iterable[BatchRecord]) -> set[tuple[str, str]]:
    """(settings_key, trajectory sha256) of every trajectory the lake holds an audit of."""
    return {(r.settings_key, t.sha256) for r in records for t in r.trajectories if t.status == "audited"}


def now() -> datetime:
    return datetime.now(timezone.utc)
