"""`audit eval` through typer's CliRunner: on a tiny model (fast), and once on the embedded
SmolLM2 with one example (slow)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from auditor.cli import app

runner = CliRunner()


@pytest.fixture
def tiny_models(monkeypatch):
    from auditor.cli import eval_cmd
    from auditor.testing import tiny_model, tiny_tokenizer

    monkeypatch.setattr(eval_cmd, "_load_model", lambda spec: (tiny_model("llama"), tiny_tokenizer()))


def test_eval_help_has_an_example():
    res = runner.invoke(app, ["eval", "--help"])
    assert res.exit_code == 0
    assert "Example: audit eval" in res.output and "--hops" in res.output and "--method" in res.output


def test_eval_table_json_and_pngs(tiny_models, tmp_path):
    out = tmp_path / "ev"
    res = runner.invoke(app, ["eval", "mq-q1", "--method", "flashtrace", "--method", "attention", "--hops", "0",
                              "--hops", "1", "--n", "1", "--length", "60", "--variant", "gold", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "flashtrace-h1" in res.output and "attention" in res.output and "recovery" in res.output
    data = json.loads((out / "eval.json").read_text())
    assert {r["method"] for r in data["records"]} == {"flashtrace-h0", "flashtrace-h1", "attention"}
    assert (out / "eval_deletion.png").stat().st_size > 1000 and (out / "eval_recovery.png").stat().st_size > 1000


def test_eval_json_output(tiny_models, tmp_path):
    res = runner.invoke(app, ["eval", "vt-h1-c1", "-m", "attention", "--n", "1", "--length", "50", "--variant", "gold",
                              "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["summary"][0]["method"] == "attention" and payload["summary"][0]["task"] == "vt-h1-c1"
    assert payload["settings"]["length"] == 50


@pytest.mark.parametrize("args,msg", [
    (["eval", "niah"], "unknown task"),
    (["eval", "mq-q2", "--method", "magic"], "unknown method"),
    (["eval", "mq-q2", "--variant", "best"], "--variant"),
])
def test_eval_usage_errors(args, msg):
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert msg in res.output


@pytest.mark.slow
def test_eval_embedded_model_one_example(tmp_path):
    from auditor.model_registry import list_models

    if list_models()[0].status != "ready":
        pytest.skip("the embedded model is not provisioned (audit models --provision)")
    res = runner.invoke(app, ["eval", "mq-q1", "--n", "1", "--length", "128", "--method", "flashtrace",
                              "--method", "attention", "--hops", "1", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    rows = {r["method"]: r for r in payload["summary"]}
    assert set(rows) == {"flashtrace-h1", "attention"}
    assert 0.0 <= rows["flashtrace-h1"]["recovery"] <= 1.0
    assert payload["generation"]["mq-q1"]["generated"] == 1
