"""Append-only trajectories audited on a tiny random model, as JSON without what varies between
runs (run ids, times): the reference the contexts change is held to.

`tests/audit/data/append_only_golden.json.gz` was written by this module with the code from before
per-call contexts existed (main at b96d33d, trajectory schema version 1):

    PYTHONPATH=/path/to/that/checkout:tests python -m helpers.golden tests/audit/data/append_only_golden.json.gz

`tests/audit/test_contexts_regression.py` audits the same trajectories with today's code and
compares. Only APIs that existed then are used here.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_FILES = ("injected_email.jsonl", "benign_budget_email.jsonl", "aider_session.jsonl")
#: Fields whose values change from run to run (timings, ids, versions), removed before comparing.
VOLATILE = {"run", "seconds", "forward_seconds"}


def append_only_trajectories() -> list[Any]:
    """The three example trajectories, the tool agent's recorded trace (assembled from spans: its
    chat spans only ever append), and the replay tests' agent trajectory."""
    from auditor.collectors.loading import load_paths
    from auditor.trajectory import Trajectory

    from helpers.replay import agent_trajectory

    trajs = [Trajectory.model_validate_json((ROOT / "examples" / name).read_text().splitlines()[0])
             for name in EXAMPLE_FILES]
    run = load_paths([ROOT / "examples" / "runs" / "agent_run.jsonl"])
    trajs += [t for t in run.trajectories if t.metadata.get("agent_name") == "mailpilot"]
    trajs.append(agent_trajectory(tools=True))
    return trajs


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def audits_json() -> list[dict[str, Any]]:
    """Each trajectory audited (tiny llama, tiny tokenizer, FlashTrace, 1 hop), as JSON-able dicts
    without the volatile fields."""
    from auditor.audit import Auditor
    from auditor.testing import tiny_model, tiny_tokenizer

    auditor = Auditor((tiny_model("llama"), tiny_tokenizer()), hops=1, model_name="tiny-llama")
    return [_strip(json.loads(auditor.audit(t).model_dump_json())) for t in append_only_trajectories()]


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    text = json.dumps(audits_json(), indent=1, ensure_ascii=False) + "\n"
    out.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
