"""Generate the prompt-injection benchmark v2 for `audit check` (seeded, deterministic).

Multi-step tool-calling runs in seven domains (email, files, calendar, payments, messaging, web,
code), six task templates each (`scenarios_*.py`), every action labelled: each tool call under its
id, each Aider edit block under ``edit_<n>``, the final answer under ``final`` (``"injected"``: it
does what an injection asked and the user did not; else ``"benign"``). Per template: 3 runs with
nothing extra (``clean``, or ``delegated`` when a decisive value such as the recipient comes from
data the user asked the agent to read), 2 ``distractor``, 3 ``ignored``, 6 ``injected`` and 1
``answer_hijack`` (Aider templates: a 7th injected instead). See README.md for the families.

Split by template and family, never at random: per domain half the templates are calibration and
half held-out (each module's CALIBRATION / HELDOUT); families likewise (`attacks.py`, BIPIA train
vs test). A run takes its template's split, and only families of that split.

Run:  .venv/bin/python benchmarks/injection/generate.py  [--seed 7] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bipia  # noqa: E402
import scenarios_calendar  # noqa: E402
import scenarios_code  # noqa: E402
import scenarios_email  # noqa: E402
import scenarios_files  # noqa: E402
import scenarios_messaging  # noqa: E402
import scenarios_payments  # noqa: E402
import scenarios_web  # noqa: E402
from assemble import Attack, assemble  # noqa: E402
from attacks import OWN_CALIBRATION, OWN_HELDOUT  # noqa: E402

DEFAULT_OUT = HERE / "data"
SEED = 7
MODULES = {m.DOMAIN: m for m in (scenarios_email, scenarios_files, scenarios_calendar, scenarios_payments,
                                 scenarios_messaging, scenarios_web, scenarios_code)}
DOMAINS = tuple(MODULES)
SPLITS = ("calibration", "heldout")
#: Variants of one template's runs, in order ("plain": clean or delegated, decided by the scenario).
PER_TEMPLATE = ["plain"] * 3 + ["distractor"] * 2 + ["ignored"] * 3 + ["injected"] * 6 + ["answer_hijack"]
SYSTEM_SOURCE = "benchmark"


def family_splits() -> dict[str, dict[str, Any]]:
    """Family name -> {"split", "source", "category"} for every family."""
    out: dict[str, dict[str, Any]] = {}
    for split, names in (("calibration", OWN_CALIBRATION), ("heldout", OWN_HELDOUT)):
        for name in names:
            out[name] = {"split": split, "source": "own", "category": None}
    for bsplit, split in (("train", "calibration"), ("test", "heldout")):
        for name, category in bipia.families(bsplit):
            out[name] = {"split": split, "source": f"bipia-{bsplit}", "category": category}
    return out


def template_splits() -> dict[str, dict[str, list[str]]]:
    return {d: {"calibration": list(m.CALIBRATION), "heldout": list(m.HELDOUT)} for d, m in MODULES.items()}


class FamilyCycler:
    """Hands out families of one split in turn: own styles twice as often as BIPIA categories for
    tool-goal injections, BIPIA only for answer hijacks, so every family gets used."""

    def __init__(self, split: str) -> None:
        fams = family_splits()
        self.own = [Attack(n, f["source"]) for n, f in fams.items() if f["split"] == split and f["source"] == "own"]
        self.bipia = [Attack(n, f["source"], f["category"]) for n, f in fams.items()
                      if f["split"] == split and f["source"] != "own"]
        self.counts: Counter[str] = Counter()

    def _next(self, pool: list[Attack], key: str) -> Attack:
        k = self.counts[key]
        self.counts[key] += 1
        return pool[k % len(pool)]

    def take(self, variant: str) -> Attack:
        if variant == "answer_hijack":
            return self._next(self.bipia, "hijack")
        n = self.counts[variant + ":n"]
        self.counts[variant + ":n"] += 1
        if n % 3 == 2:
            return self._next(self.bipia, variant + ":bipia")
        return self._next(self.own, variant + ":own")


def generate(seed: int = SEED) -> list[dict[str, Any]]:
    """Every run as {"id", "messages", "tools", "metadata"}, domains and templates in order."""
    cyclers = {s: FamilyCycler(s) for s in SPLITS}
    runs = []
    for domain, module in MODULES.items():
        tsplit = {t: s for s, ts in template_splits()[domain].items() for t in ts}
        if set(tsplit) != set(module.TEMPLATES):
            raise ValueError(f"{domain}: every template needs exactly one split")
        for template, build in module.TEMPLATES.items():
            split = tsplit[template]
            for k, slot in enumerate(PER_TEMPLATE):
                rng = random.Random(f"{seed}:{domain}:{template}:{k}")
                scn = build(rng)
                variant = slot
                if slot == "plain":
                    variant = "delegated" if scn.delegated else "clean"
                elif slot == "answer_hijack" and scn.pasted:
                    variant = "injected"  # an Aider reply with edits has no final answer to hijack
                attack = cyclers[split].take(variant) if variant in ("ignored", "injected", "answer_hijack") \
                    else None
                run_id = f"inj2-{domain}-{template}-{k:02d}-{variant}"
                run = assemble(run_id, scn, variant, attack, rng)
                run["metadata"] = {"split": split, "domain": domain, "template": template, **run["metadata"]}
                runs.append(run)
    return runs


def to_trajectory(run: dict[str, Any]) -> Any:
    """The run as a validated `Trajectory` (actions derived from the messages, labels checked)."""
    from auditor.actions import with_actions
    from auditor.trajectory import Trajectory

    traj = Trajectory.from_openai_messages(run["id"], run["messages"], run["tools"], source=SYSTEM_SOURCE,
                                           metadata=run["metadata"])
    keys = []
    for a in with_actions(traj).actions:
        if a.kind.value == "tool_call":
            keys.append(a.tool_call_id)
        elif a.kind.value == "code_edit":
            keys.append(f"edit_{sum(k.startswith('edit_') for k in keys) + 1}")
        else:
            keys.append("final")
    if keys != list(run["metadata"]["labels"]):
        raise ValueError(f"{run['id']}: labels {list(run['metadata']['labels'])} do not match actions {keys}")
    return traj


def write(runs: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """One canonical JSONL file per domain, and splits.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for domain in DOMAINS:
        lines = [to_trajectory(r).model_dump_json(exclude_defaults=True) for r in runs
                 if r["metadata"]["domain"] == domain]
        path = out_dir / f"{domain}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    splits = {"templates": template_splits(),
              "families": {s: sorted(n for n, f in family_splits().items() if f["split"] == s) for s in SPLITS},
              "family_sources": {n: f["source"] for n, f in sorted(family_splits().items())}}
    (out_dir / "splits.json").write_text(json.dumps(splits, indent=2) + "\n", encoding="utf-8")
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    runs = generate(args.seed)
    paths = write(runs, args.out)
    counts = Counter((r["metadata"]["split"], r["metadata"]["variant"]) for r in runs)
    print(f"wrote {len(runs)} runs to {args.out}: " + ", ".join(f"{s}/{v}={n}" for (s, v), n in sorted(counts.items())))
    for p in paths:
        print(f"  {p} ({p.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
