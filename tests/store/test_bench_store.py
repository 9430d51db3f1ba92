"""The store benchmark still runs (tiny sizes; the real run is `python benchmarks/bench_store.py`)."""

from __future__ import annotations

from pathlib import Path

import bench_store  # benchmarks/ is on pytest's pythonpath (pyproject.toml)

ROOT = Path(__file__).resolve().parents[2]


def test_bench_store_smoke():
    res = bench_store.run(spans=100, attributions=1_000, runs=2, repeat=1)
    assert res["spans"]["batched"]["spans_per_second"] > 0
    assert res["audits"]["attribution_rows"] >= 800
    assert set(res["queries"]) == {*bench_store.QUERIES, "action_export"}
    assert res["queries"]["one_action_top3"]["rows"] == 3
    assert res["audits"]["verdicts"] == res["audits"]["actions"]  # the verdict views are measured full
    assert "# Store benchmark" in bench_store.markdown(res)


def test_published_figures_exist_and_match_the_doc():
    import json

    results = ROOT / "benchmarks" / "results" / "store.json"
    doc = ROOT / "docs" / "benchmarks" / "store.md"
    data = json.loads(results.read_text())
    assert data["audits"]["attribution_rows"] >= 1_000_000
    text = doc.read_text()
    assert f"{data['audits']['attribution_rows']:,}" in text
    assert f"{data['spans']['batched']['spans_per_second']:,}" in text
