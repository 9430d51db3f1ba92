"""Per-call contexts change nothing for an append-only trajectory: the example trajectories, the
tool agent's recorded trace and the replay tests' agent, audited on a tiny random model, give the
audit that the code from before contexts gave (`tests/audit/data/append_only_golden.json.gz`,
written by `helpers.golden` at main b96d33d).

The only differences allowed are the schema's: ``schema_version`` 1 -> 2 and the new fields at
their defaults (``contexts: []`` on the trajectory and the audit, ``context_id: null`` on
actions and segments; ``causal: []``, ``causal_seconds: 0`` and ``provenance``, the verdict's
evidence). Floats are the same computation on the same inputs, so they must agree to
float32 rounding; token scores were stored with 5 significant digits, so they may differ in the
last one when the platform's float sums do.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import pytest

from helpers.golden import audits_json

GOLDEN = Path(__file__).parent / "data" / "append_only_golden.json.gz"


def _without_new_defaults(obj: Any) -> Any:
    """The audit as schema version 1 wrote it: new fields dropped only where they hold their
    defaults (a non-default value stays and fails the comparison)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if (k == "contexts" and v == []) or (k == "context_id" and v is None):
                continue
            # later additions (the verdict's evidence): no causal deltas unless asked, and value
            # provenance, which is text matching beside the attribution, not part of it
            if (k == "causal_seconds" and v == 0) or (k == "causal" and v == []) or (k == "provenance" and isinstance(v, list)):
                continue
            out[k] = 1 if k == "schema_version" and v == 2 else _without_new_defaults(v)
        return out
    if isinstance(obj, list):
        return [_without_new_defaults(v) for v in obj]
    return obj


def _portable(obj: Any) -> Any:
    """Paths recorded in metadata (``source: /abs/checkout/examples/runs/x.jsonl:9``) made
    relative to the checkout, so the golden file written in one clone compares in another."""
    if isinstance(obj, dict):
        return {k: _portable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_portable(v) for v in obj]
    if isinstance(obj, str) and obj.startswith("/") and "/examples/" in obj:
        return "examples/" + obj.split("/examples/", 1)[1]
    return obj


def _diff(a: Any, b: Any, path: str = "$") -> str | None:
    """Where ``a`` and ``b`` first differ (floats to relative 1e-4, the 5th significant digit
    the token scores were stored with), or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return f"{path}: keys {list(a)} != {list(b)}"
        for k in a:
            d = _diff(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = _diff(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-9):
            return None
        return f"{path}: {a!r} != {b!r}"
    return None if a == b else f"{path}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def now_and_before() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    before = json.loads(gzip.decompress(GOLDEN.read_bytes()).decode("utf-8"))
    return _portable(audits_json()), _portable(before)


def test_append_only_trajectories_have_no_contexts(now_and_before):
    now, _ = now_and_before
    assert len(now) == 5
    for audit in now:
        assert audit["trajectory"]["schema_version"] == 2
        assert audit["trajectory"]["contexts"] == [] and audit["contexts"] == []
        assert all(s["context_id"] is None for s in audit["segments"])


def test_append_only_audits_equal_the_audits_from_before_contexts(now_and_before):
    now, before = now_and_before
    assert [a["trajectory"]["id"] for a in now] == [a["trajectory"]["id"] for a in before]
    for mine, theirs in zip(now, before):
        assert _diff(_without_new_defaults(mine), theirs) is None, (mine["trajectory"]["id"],
                                                                    _diff(_without_new_defaults(mine), theirs))


def test_the_comparison_sees_a_changed_score(now_and_before):
    now, before = now_and_before
    changed = json.loads(json.dumps(_without_new_defaults(now[0])))
    changed["actions"][0]["drivers"][0]["score"] *= 1.001
    assert _diff(changed, before[0]) is not None
