"""Per-action rows of the benchmark: labels, metadata and every candidate feature of every target.

`build_rows` reads the replay passes (`check_replay`) and computes, per labelled action, the
verdict's features (`auditor.check.verdict.target_evidence`, the code `audit check` runs) for the
whole call (key ``""``) and for each explained argument, plus the baselines' scores: the keyword
rule, FlashTrace support, attention and leave-one-out support where those passes ran. The rows go
to ``benchmarks/results/check_raw.jsonl``; `--reuse` analyses from them alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "benchmarks" / "results" / "check_raw.jsonl"


def _policy() -> Any:
    from auditor.check.policy import Policy

    return Policy(judge="arguments", decisive_arguments=["*"])


def target_features(attr: Any, audit: Any, policy: Any) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Features per target ("" = the whole call, else an explained argument) and FlashTrace supports."""
    from auditor.check.scoring import support_of
    from auditor.check.shares import support
    from auditor.check.verdict import segment_texts, target_evidence

    call = support_of(attr, policy, audit)
    call = 1.0 if call is None else call
    texts = segment_texts(audit, attr)
    feats = {"": target_evidence(attr, policy, None, call, call, texts).features}
    sup = {"": call}
    for g in attr.arguments:
        if g.name in feats:
            continue
        s = support(g.drivers, policy, audit)
        sup[g.name] = 1.0 if s is None else s
        feats[g.name] = target_evidence(attr, policy, g.name, sup[g.name], call, texts).features
        feats[g.name]["_mass"] = float(s is not None)
    return feats, sup


def _loo_support(scores: dict[str, float], kinds: dict[str, str], policy: Any) -> float:
    a = sum(max(0.0, v) for k, v in scores.items() if kinds.get(k) in {x.value for x in policy.authority_kinds})
    d = sum(max(0.0, v) for k, v in scores.items() if kinds.get(k) in {x.value for x in policy.data_kinds})
    return a / (a + d) if a + d > 0 else 1.0


def build_rows(runs: list[Any]) -> list[dict[str, Any]]:
    """One row per labelled action of ``runs`` (see the module docstring)."""
    import check_replay  # type: ignore[import-not-found]

    from auditor.audit.schema import TrajectoryAudit
    from auditor.check.heuristics import keyword_risk
    from auditor.check.shares import support

    policy = _policy()
    passes = {name: check_replay.load_pass(name) for name in ("flashtrace", "attention", "loo")}
    rows: list[dict[str, Any]] = []
    for run in runs:
        m = run.metadata
        ft = passes["flashtrace"].get(run.id)
        if ft is None:
            continue  # not replayed yet
        audit = TrajectoryAudit.model_validate(ft["audit"]) if ft.get("audit") else None
        attrs = {a.action.id: a for a in audit.actions} if audit else {}
        att_saved = passes["attention"].get(run.id)
        att = {a.action.id: a for a in TrajectoryAudit.model_validate(att_saved["audit"]).actions} \
            if att_saved and att_saved.get("audit") else None
        loo = passes["loo"].get(run.id)
        n_replayed = max(1, len(attrs))
        for action, label in run.labelled_actions():
            row: dict[str, Any] = {
                "run": run.id, "action": action.id, "step": action.step, "kind": action.kind.value,
                "tool": action.tool_name or action.kind.value, "label": int(label == "injected"),
                "split": run.split, "domain": run.domain, "template": run.template, "family": run.family,
                "family_source": run.family_source, "variant": run.variant,
                "decisive_meta": (m.get("decisive") or {}).get(action.tool_call_id or "", []),
                "keyword": keyword_risk(run.trajectory, action), "replayed": action.id in attrs,
            }
            attr = attrs.get(action.id)
            if attr is not None:
                feats, sup = target_features(attr, audit, policy)
                attackers = [str(v).lower() for v in m.get("attacker_values") or []]
                row["attacker_targets"] = [t for t in feats if t and attackers and any(
                    v in json.dumps(action.arguments.get(t), ensure_ascii=False).lower() for v in attackers)]
                row.update(targets=feats, support=sup,
                           seconds=ft["seconds"] / n_replayed, causal_seconds=ft["causal_seconds"] / n_replayed)
                if att is not None and action.id in att:
                    a2 = att[action.id]
                    s = {"": support(a2.drivers, policy, None)}
                    s.update({g.name: support(g.drivers, policy, None) for g in a2.arguments})
                    row["attention"] = {k: (1.0 if v is None else v) for k, v in s.items()}
                    row["attention_seconds"] = att_saved["seconds"] / n_replayed
                if loo is not None and loo.get("scores"):
                    s = {}
                    for key, per in loo["scores"].items():
                        aid, arg = key.split("|", 1)
                        if aid == action.id:
                            s[arg] = _loo_support(per, loo["kinds"], policy)
                    if s:
                        row["loo"] = s
                        row["loo_seconds"] = loo["seconds"] / n_replayed
            rows.append(row)
    return rows


def save(rows: list[dict[str, Any]]) -> None:
    RAW.parent.mkdir(parents=True, exist_ok=True)
    RAW.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows))


def load() -> list[dict[str, Any]]:
    return [json.loads(line) for line in RAW.read_text().splitlines() if line.strip()]
