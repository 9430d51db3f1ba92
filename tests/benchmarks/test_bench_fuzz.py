"""The fuzz benchmark: a small seeded run finds nothing (slow tier: it starts receivers and runs
`audit trace` in subprocesses), and the published figures are what the doc shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench_fuzz  # benchmarks/ is on pytest's pythonpath

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_small_run_finds_no_crash_loss_or_wrong_verdict():
    res = bench_fuzz.run(malformed=150, seed=7, cli=True)
    assert [r["kind"] for r in res["rows"]] == list(bench_fuzz.KINDS)
    for r in res["rows"]:
        assert r["malformed"] >= 150 and r["inputs"] > r["malformed"]
        assert (r["crashes"], r["valid_lost"], r["wrong"]) == (0, 0, 0), r["examples"]
    assert "| gRPC |" in bench_fuzz.markdown(res, "python benchmarks/bench_fuzz.py")


def test_published_figures_exist_and_match_the_doc():
    data = json.loads((ROOT / "benchmarks" / "results" / "fuzz.json").read_text())
    doc = (ROOT / "docs" / "benchmarks" / "fuzz.md").read_text()
    assert data["command"] in doc
    assert [r["kind"] for r in data["rows"]] == list(bench_fuzz.KINDS)
    for r in data["rows"]:
        assert r["malformed"] >= 10_000
        assert (r["crashes"], r["valid_lost"], r["wrong"]) == (0, 0, 0)
        assert f"| {r['kind']} | {r['inputs']:,} | {r['malformed']:,} |" in doc
