"""auditor.distributed: audits at fleet scale, on Ray, into a Parquet results lake.

- `run`: `audit_on_ray` (`audit trace --ray`): inputs (files, globs, directories, URIs) to a
  results lake, on a pool of Ray actors that each load the model once; idempotent and resumable.
- `lake`: `open_lake` / `query_lake` (`audit query --lake`): the store's tables and views over
  the lake's shards, nothing imported.
- `ingest`: `ingest_lake` (`audit ingest`): the lake into the DuckDB store, one transaction per batch.
- `manifest`: the lake's layout and records; `locations`: paths and URIs through pyarrow
  filesystems; `worker`: one replay worker (a plain class); `ray_runner`: the Ray actors (the
  only module that imports ``ray``, an optional extra: ``pip install 'auditor[ray]'``).

Names are imported lazily: ``import auditor.distributed`` loads neither Ray nor a model.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "RayOptions": "options",
    "RunEvent": "options",
    "LakeRun": "run",
    "audit_on_ray": "run",
    "open_lake": "lake",
    "query_lake": "lake",
    "IngestReport": "ingest",
    "ingest_lake": "ingest",
    "BatchRecord": "manifest",
    "RunSummary": "manifest",
    "WorkerStartError": "worker",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'auditor.distributed' has no attribute {name!r}")
    return getattr(import_module(f"auditor.distributed.{module}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
