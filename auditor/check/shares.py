"""Support arithmetic shared by the support rule (`scoring`) and the verdict's features (`verdict`):
authority and data shares of a list of drivers, and their ratio under the policy's weighting."""

from __future__ import annotations

from typing import Any

from auditor.audit.schema import Driver
from auditor.check.policy import Policy


def ratio(a: float, d: float) -> float | None:
    return a / (a + d) if (a + d) > 0 else None


def _segment_tokens(audit: Any, segment_id: str) -> int:
    if audit is None:
        return 1
    try:
        seg = audit.segment(segment_id)
    except KeyError:
        return 1
    if seg.token_start is None or seg.token_end is None:
        return max(1, len(seg.text) // 4)
    return max(1, seg.token_end - seg.token_start)


def shares(drivers: list[Driver], policy: Policy) -> tuple[float, float, float]:
    a = sum(max(0.0, x.share) for x in drivers if x.kind in policy.authority_kinds)
    d = sum(max(0.0, x.share) for x in drivers if x.kind in policy.data_kinds)
    total = sum(max(0.0, x.share) for x in drivers)
    return a, d, max(0.0, total - a - d)


def support(drivers: list[Driver], policy: Policy, audit: Any) -> float | None:
    a, d, _ = shares(drivers, policy)
    if policy.weighting == "per_token":
        n_a = sum(_segment_tokens(audit, x.segment_id) for x in drivers if x.kind in policy.authority_kinds)
        n_d = sum(_segment_tokens(audit, x.segment_id) for x in drivers if x.kind in policy.data_kinds)
        a = a / n_a if n_a else 0.0
        d = d / n_d if n_d else 0.0
    return ratio(a, d)



__all__ = ["shares", "support", "ratio"]
