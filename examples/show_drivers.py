"""Print the ranked drivers of every action of the example trajectories, computed with the
embedded SmolLM2 and FlashTrace (one forward pass per trajectory, or per model call's context
when its calls had their own: then each action says which request it came from).

Run: .venv/bin/python examples/show_drivers.py [--top 3] [--hops 1] [--method flashtrace] [FILE ...]
(any file `audit trace` reads; docs/examples.md holds its output).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).parent
DEFAULT = [HERE / "injected_email.jsonl", HERE / "benign_budget_email.jsonl", HERE / "aider_session.jsonl"]


def show(audit, top: int) -> str:
    traj = audit.trajectory
    tokens = len(audit.tokens) + sum(len(c.tokens) for c in audit.contexts)
    calls = f", {len(audit.contexts)} contexts" if audit.contexts else ""
    lines = [f"== {traj.id}  ({tokens} tokens{calls}, {len(audit.actions)} actions, "
             f"{audit.run.model}, {audit.run.method}, hops={audit.run.hops})"]
    for note in audit.notes:
        lines.append(f"   note: {note}")
    for item in audit.dropped + audit.unplaced:
        lines.append(f"   ! {item}")
    for act in audit.actions:
        a = act.action
        flow = ", ".join(f"rho{h.hop}={h.flow_ratio:.2f}" for h in act.hops)
        lines.append(f"  {a.id.rsplit(':', 1)[-1]}  {a.summary[:90]}")
        if a.context_id is not None:
            n = len(audit.tokens_of(a.context_id))
            lines.append(f"      request {traj.context_number(a.context_id)} of {len(traj.contexts)} "
                         f"({a.context_id}, {n} tokens)")
        lines.append(f"      {flow}")
        for d in act.top(top):
            lines.append(f"      {d.rank}. {d.share:6.1%}  {d.kind.value:<15}  {d.label}")
        for g in act.arguments:
            sup = support_of(g.drivers)
            best = g.drivers[0] if g.drivers else None
            lines.append(f"      · {g.name:<8} support {'-' if sup is None else f'{sup:.2f}'}"
                         + (f"   top: {best.share:6.1%} {best.kind.value:<15} {best.label}" if best else ""))
    return "\n".join(lines)


def support_of(drivers) -> float | None:
    """authority / (authority + data) over these drivers (what `audit check` compares)."""
    from auditor.trajectory import AUTHORITY_KINDS, DATA_KINDS

    a = sum(max(0.0, d.share) for d in drivers if d.kind in AUTHORITY_KINDS)
    x = sum(max(0.0, d.share) for d in drivers if d.kind in DATA_KINDS)
    return a / (a + x) if a + x > 0 else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, default=DEFAULT)
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--hops", type=int, default=1)
    parser.add_argument("--method", default="flashtrace")
    parser.add_argument("--last-conversation", action="store_true",
                        help="drop per-call contexts: audit each trajectory as its last conversation alone (how "
                             "runs were rebuilt before contexts), for comparison")
    args = parser.parse_args(argv)

    from auditor.audit import Auditor
    from auditor.collectors.loading import load_paths

    loaded = load_paths(list(args.files))
    for issue in loaded.issues:
        print(f"note: {issue}", file=sys.stderr)
    trajs = loaded.trajectories
    if args.last_conversation:  # the actions found in the last call's messages, history included
        trajs = [t.model_copy(update={"contexts": [], "actions": []}) for t in trajs]
    auditor = Auditor(method=args.method, hops=args.hops)
    audits = auditor.audit_many(trajs, progress=sys.stderr.isatty())
    print("\n\n".join(show(a, args.top) for a in audits))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
