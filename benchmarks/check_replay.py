"""The replay half of `bench_check.py`: audit every benchmark run and keep the audits.

Each pass writes one JSON line per run to ``benchmarks/results/check_audits/<pass>.<shard>.jsonl``
(git-ignored; appended as runs finish, so an interrupted pass resumes where it stopped):

- ``flashtrace``: `Auditor(method="flashtrace", hops=1, causal=True)` explaining the whole call and
  the arguments named in `EXPLAINED` (a superset of any decisive list the calibration can choose),
  on the actions that have a tool output or a file before them (the others have no data to be
  driven by: the verdict passes them without a replay, `auditor.check.verdict`). The line is the
  `TrajectoryAudit` without layer shares and token strings, plus the timings.
- ``attention``: the same with last-layer attention (no causal deltas), on a subset of runs.
- ``loo``: leave-one-segment-out on the flashtrace audit's targets (the call and each explained
  argument): every authority and data segment before a target removed in turn (the support ratio
  reads no other kind), the drop of the target's
  log-probability as that segment's score (ContextCite's leave-one-out), on a subset of runs;
  run with `target_logprobs_many` (one forward per segment, from the segment on).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AUDITS = ROOT / "benchmarks" / "results" / "check_audits"

#: Arguments the benchmark's replay explains (FlashTrace targets): who or where an action's effect
#: goes, under every spelling the calibration may choose from. Content arguments (bodies, subjects,
#: queries, paths, amounts) are not explained: no decisive list the benchmark tries contains them.
EXPLAINED = ("to", "cc", "bcc", "recipient*", "attendee*", "invitee*", "participant*", "channel*", "share_with",
             "user", "user_*", "member*", "iban", "account*", "url", "link", "restaurant", "hotel", "email",
             "address", "phone")


def first_data_index(traj: Any) -> int:
    """Index of the first message that carries data (a tool output, or a user message with a file)."""
    for i, m in enumerate(traj.messages):
        if m.role == "tool" or (m.role == "user" and "```" in m.content):
            return i
    return len(traj.messages)


def replayed_actions(traj: Any) -> list[Any]:
    first = first_data_index(traj)
    return [a for a in traj.actions if a.message_index > first]


def strip(audit: Any) -> dict[str, Any]:
    """The audit as JSON without layer shares and token strings (token scores are kept, at 4 digits)."""
    data = audit.model_dump(mode="json")
    data["tokens"] = []
    for act in data["actions"]:
        act["token_scores"] = [float(f"{x:.4g}") for x in act["token_scores"]]
        act["layer_shares"] = {}
        for g in act["arguments"]:
            g["token_scores"] = [float(f"{x:.4g}") for x in g["token_scores"]]
    return data


def done_ids(name: str) -> set[str]:
    out: set[str] = set()
    for f in AUDITS.glob(f"{name}.*.jsonl"):
        for line in f.read_text().splitlines():
            if line.strip():
                try:
                    out.add(json.loads(line)["run_id"])
                except (json.JSONDecodeError, KeyError):
                    pass  # a line cut by an interrupted write: that run is redone
    return out


def load_pass(name: str) -> dict[str, dict[str, Any]]:
    """run id -> saved line, for one pass."""
    out: dict[str, dict[str, Any]] = {}
    for f in sorted(AUDITS.glob(f"{name}.*.jsonl")):
        for line in f.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            out[row["run_id"]] = row
    return out


def _auditor(pair: Any, method: str) -> Any:
    from auditor.audit import Auditor

    return Auditor(pair, method=method, hops=1, model_name="smollm2-135m-instruct", arguments=list(EXPLAINED),
                   causal=method == "flashtrace")


def replay_shard(name: str, runs: list[Any], shard: int, threads: int) -> None:
    """Audit ``runs`` (those not done yet) for pass ``name``, appending to this shard's file."""
    import torch

    from auditor.model_registry import load_model

    torch.set_num_threads(threads)
    AUDITS.mkdir(parents=True, exist_ok=True)
    out = AUDITS / f"{name}.{shard}.jsonl"
    done = done_ids(name)
    todo = [r for r in runs if r.id not in done]
    if not todo:
        return
    pair = load_model()
    if name == "loo":
        return _loo_shard(pair, todo, out)
    auditor = _auditor(pair, name)
    t0 = time.perf_counter()
    for k, run in enumerate(todo, 1):
        acts = replayed_actions(run.trajectory)
        row: dict[str, Any] = {"run_id": run.id}
        if acts:
            audit = auditor.audit(run.trajectory.model_copy(update={"actions": acts}))
            row.update(audit=strip(audit), seconds=audit.seconds, causal_seconds=audit.causal_seconds,
                       forward_seconds=audit.forward_seconds, n_tokens=len(audit.tokens))
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(f"  {name}[{shard}]: {k}/{len(todo)} runs, {time.perf_counter() - t0:.0f} s", flush=True)


def _loo_shard(pair: Any, runs: list[Any], out: Path) -> None:
    """Leave-one-segment-out on the flashtrace audits' targets (see the module docstring)."""
    from auditor.attribution import Variant, target_logprobs_many
    from auditor.audit import Auditor
    from auditor.audit.schema import TrajectoryAudit

    audits = load_pass("flashtrace")
    renderer = Auditor(pair, arguments=False)
    t0 = time.perf_counter()
    for k, run in enumerate(runs, 1):
        row: dict[str, Any] = {"run_id": run.id}
        saved = audits.get(run.id)
        if saved is not None and saved.get("audit"):
            audit = TrajectoryAudit.model_validate(saved["audit"])
            rendered = renderer.render(audit.trajectory)
            t1 = time.perf_counter()
            keys, spans = [], []
            for attr in audit.actions:
                keys.append((attr.action.id, None))
                spans.append((attr.output_start, attr.output_end))
                for g in attr.arguments:
                    keys.append((attr.action.id, g.name))
                    spans.append((g.token_start, g.token_end))
            # only authority and data segments: the support ratio reads no other kind's score
            judged = {"system", "user_request", "user_constraint", "tool_output", "file_context"}
            inputs = [s for s in audit.segments if s.kind.value in judged and s.token_start is not None
                      and s.token_end is not None and s.token_end > s.token_start]
            variants = [Variant(s.id, [(s.token_start, s.token_end, ())]) for s in inputs]
            scored = target_logprobs_many(pair[0], rendered.input_ids, spans, variants)
            scores: dict[str, dict[str, float]] = {}
            for j, (aid, arg) in enumerate(keys):
                base = scored[0][j]
                per = {inputs[i].id: base.logprob - scored[1 + i][j].logprob  # type: ignore[union-attr]
                       for i in range(len(inputs)) if scored[1 + i][j] is not None and base is not None}
                scores[f"{aid}|{arg or ''}"] = per
            row.update(scores=scores, seconds=time.perf_counter() - t1,
                       kinds={s.id: s.kind.value for s in inputs})
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(f"  loo: {k}/{len(runs)} runs, {time.perf_counter() - t0:.0f} s", flush=True)
