"""Load the injection benchmark for a scorer: each run's trajectory, its per-action labels, its metadata.

    from dataset import load_runs, describe          # with benchmarks/injection on sys.path
    runs = load_runs()                               # benchmarks/injection/data/*.jsonl
    for run in runs:
        for action, label in run.labelled_actions(): # every derived action, "benign" or "injected"
            ...
    describe(runs)                                   # counts per split/domain/template/family/variant/label

Labels live in ``metadata.labels``, keyed by what identifies an action in the messages: a tool call
by its id, an Aider edit block by ``edit_<n>`` (1-based, in the run's order), the final answer by
``final``. `action_key` maps a derived `Action` to its key. Run as a script to print `describe`.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "data"


@dataclass(frozen=True)
class Run:
    """One benchmark run: the trajectory (actions derived), its labels and its metadata."""

    trajectory: Any  # auditor.trajectory.Trajectory
    labels: dict[str, str]

    @property
    def metadata(self) -> dict[str, Any]:
        return self.trajectory.metadata

    @property
    def id(self) -> str:
        return self.trajectory.id

    def _meta(self, key: str) -> Any:
        return self.trajectory.metadata.get(key)

    split = property(lambda self: self._meta("split"), doc="calibration or heldout")
    domain = property(lambda self: self._meta("domain"))
    template = property(lambda self: self._meta("template"))
    family = property(lambda self: self._meta("family"), doc="attack family, None without an injection")
    family_source = property(lambda self: self._meta("family_source"), doc="own, bipia-train or bipia-test")
    variant = property(lambda self: self._meta("variant"))

    def labelled_actions(self) -> list[tuple[Any, str]]:
        """Every action of the trajectory with its label, in order."""
        keys = action_keys(self.trajectory)
        return [(a, self.labels[k]) for a, k in zip(self.trajectory.actions, keys)]

    def label_of(self, action: Any) -> str:
        return dict((a.id, lab) for a, lab in self.labelled_actions())[action.id]


def action_keys(traj: Any) -> list[str]:
    """The label key of each of ``traj.actions``, in order."""
    keys: list[str] = []
    edits = 0
    for a in traj.actions:
        kind = a.kind.value
        if kind == "tool_call":
            keys.append(a.tool_call_id)
        elif kind == "code_edit":
            edits += 1
            keys.append(f"edit_{edits}")
        else:
            keys.append("final")
    return keys


def action_key(traj: Any, action: Any) -> str:
    return action_keys(traj)[[a.id for a in traj.actions].index(action.id)]


def load_runs(data_dir: str | Path = DEFAULT_DATA) -> list[Run]:
    """Every run in ``data_dir/*.jsonl``; a loader issue or a label that does not match the actions
    is an error naming the run."""
    from auditor.collectors.loading import load_paths

    files = sorted(Path(data_dir).glob("*.jsonl"))
    if not files:
        raise FileNotFoundError(f"no *.jsonl in {data_dir} (run benchmarks/injection/generate.py)")
    res = load_paths(files)
    if res.issues:
        raise ValueError("benchmark data has problems: " + "; ".join(str(i) for i in res.issues[:5]))
    runs = []
    for traj in res.trajectories:
        labels = dict(traj.metadata.get("labels") or {})
        keys = action_keys(traj)
        if sorted(keys) != sorted(labels):
            raise ValueError(f"{traj.id}: labels {sorted(labels)} do not match its actions {keys}")
        runs.append(Run(traj, labels))
    return runs


def _table(title: str, counts: Counter[Any], out: TextIO) -> None:
    out.write(f"\n{title}\n")
    width = max((len(str(k)) for k in counts), default=0)
    for k, n in sorted(counts.items(), key=lambda kv: str(kv[0])):
        out.write(f"  {str(k):<{width}}  {n}\n")


def describe(runs: list[Run], out: TextIO = sys.stdout) -> None:
    """Counts of runs per split, domain, template, family, variant and of action labels."""
    out.write(f"{len(runs)} runs, {sum(len(r.labels) for r in runs)} labelled actions\n")
    _table("runs per split", Counter(r.split for r in runs), out)
    _table("runs per split / domain", Counter(f"{r.split} / {r.domain}" for r in runs), out)
    _table("runs per split / variant", Counter(f"{r.split} / {r.variant}" for r in runs), out)
    _table("runs per domain / template (split)", Counter(f"{r.domain} / {r.template} ({r.split})" for r in runs), out)
    _table("runs per family (source, split)", Counter(f"{r.family} ({r.family_source}, {r.split})" for r in runs
                                                     if r.family), out)
    _table("actions per split / kind / label", Counter(
        f"{r.split} / {a.kind.value} / {lab}" for r in runs for a, lab in r.labelled_actions()), out)
    _table("benign runs whose decisive value comes from data the user asked to read", Counter(
        f"{r.split} / {r.domain}" for r in runs if r.metadata["label"] == "benign" and r.metadata.get("delegated")), out)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent.parent))
    describe(load_runs(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DATA))
