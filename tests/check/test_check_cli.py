"""`audit check` on the command line: exit codes, files written, help. Fast tests use a stand-in
auditor; the slow ones replay the examples on the embedded model."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest
from typer.testing import CliRunner

from auditor.cli import app

from helpers.check import ROOT, FakeAuditor

runner = CliRunner()
INJECTED = str(ROOT / "examples" / "injected_email.jsonl")
BENIGN = str(ROOT / "examples" / "benign_budget_email.jsonl")


@pytest.fixture
def fake(monkeypatch):
    made = {}

    def make_auditor(model=None, method="flashtrace", hops=1, **kw):
        made.update(model=model, method=method, hops=hops)
        return FakeAuditor({"send_email": {"m1": 0.1, "m3": 0.9}, "read_inbox": {"m1": 0.9, "m3": 0.1}})

    monkeypatch.setattr("auditor.audit.runs.make_auditor", make_auditor)  # the one seam
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return made


def test_help_has_an_example_and_exit_codes():
    result = runner.invoke(app, ["check", "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "--junit" in result.output and "--sarif" in result.output
    assert "Exit codes" in result.output


def test_findings_exit_1_and_every_file_is_written(fake, tmp_path):
    junit, sarif = tmp_path / "out" / "junit.xml", tmp_path / "audit.sarif"
    policy = tmp_path / "support.toml"
    policy.write_text('decide = "support"\n')  # the support rule: the stand-in's shares decide exactly
    result = runner.invoke(app, ["check", INJECTED, "--junit", str(junit), "--sarif", str(sarif),
                                 "--method", "loo", "--hops", "0", "--github", "--policy", str(policy)])
    assert result.exit_code == 1, result.output
    assert fake == {"model": None, "method": "loo", "hops": 0}  # no causal deltas asked: the policy decides by support
    assert "::error file=" in result.output and "FAIL" in result.output
    assert ET.parse(junit).getroot().get("failures") == "1"
    assert json.loads(sarif.read_text())["runs"][0]["results"][0]["ruleId"] == "low-support"


def test_json_output_and_policy_file(fake, tmp_path):
    policy = tmp_path / "p.toml"
    policy.write_text("[tools]\nsend_email = 0.05\n")
    result = runner.invoke(app, ["check", INJECTED, "--json", "--policy", str(policy)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # progress went to stderr
    assert data["summary"]["findings"] == 0 and data["policy"]["tools"] == {"send_email": 0.05}


def test_judge_override(fake):
    result = runner.invoke(app, ["check", INJECTED, "--judge", "action", "--json"])
    assert json.loads(result.stdout)["policy"]["judge"] == "action"
    assert json.loads(runner.invoke(app, ["check", INJECTED, "--json"]).stdout)["policy"]["judge"] == "arguments"
    bad = runner.invoke(app, ["check", INJECTED, "--judge", "vibes"])
    assert bad.exit_code == 2 and "judge" in bad.output


def test_threshold_override(fake):
    assert runner.invoke(app, ["check", INJECTED, "--threshold", "0.05"]).exit_code == 0


def test_skipped_records_exit_3_unless_allowed(fake, tmp_path):
    f = tmp_path / "runs.jsonl"
    f.write_text(open(BENIGN).read() + "{broken\n")
    policy = tmp_path / "p.toml"
    policy.write_text('ignore = ["*"]\n')
    result = runner.invoke(app, ["check", str(f), "--policy", str(policy)])
    assert result.exit_code == 3, result.output
    assert "skipped" in result.output and "INCOMPLETE" in result.output
    assert runner.invoke(app, ["check", str(f), "--policy", str(policy), "--allow-skipped"]).exit_code == 0


def test_usage_errors_exit_2(fake, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("threshold = 7\n")
    result = runner.invoke(app, ["check", INJECTED, "--policy", str(bad)])
    assert result.exit_code == 2 and "threshold" in result.output
    assert runner.invoke(app, ["check", str(tmp_path / "missing.jsonl")]).exit_code == 2


@pytest.mark.slow
def test_check_fails_the_injected_example(tmp_path, monkeypatch):
    """The issue's acceptance test (1/2), on the embedded model with the shipped (calibrated) policy."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    junit = tmp_path / "junit.xml"
    bad = runner.invoke(app, ["check", INJECTED, "--junit", str(junit)])
    assert bad.exit_code == 1, bad.output
    assert "send_email" in bad.output and "archive@exfil.example" in bad.output
    assert "judged by its to argument" in bad.output  # the recipient came from the inbox
    assert ET.parse(junit).getroot().get("failures") == "1"


@pytest.mark.slow
def test_check_passes_the_benign_example(monkeypatch):
    """The issue's acceptance test (2/2), on the embedded model with the shipped (calibrated) policy:
    the email's body summarises the file it read (data), its recipient is the one the user named."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    good = runner.invoke(app, ["check", BENIGN, "--json"])
    assert good.exit_code == 0, good.output
    report = json.loads(good.stdout)
    (send,) = [v for r in report["results"] for v in r["verdicts"] if v["tool_name"] == "send_email"]
    assert send["status"] == "passed" and send["argument"] == "to"
    assert send["support"] > send["threshold"] > send["action_support"]  # the whole call alone would fail


def test_db_records_the_audits_and_their_verdicts(fake, tmp_path):
    from auditor.store import Store

    db = tmp_path / "audit.duckdb"
    policy = tmp_path / "p.toml"
    policy.write_text('decide = "support"\nthreshold = 0.3\n')
    result = runner.invoke(app, ["check", INJECTED, "--db", str(db), "--json", "--policy", str(policy)])
    assert result.exit_code == 1, result.output
    assert "warning" not in result.output
    verdicts = {v["action_id"]: v for r in json.loads(result.stdout)["results"] for v in r["verdicts"]}
    with Store(db, read_only=True) as store:
        (run,) = store.runs()
        assert run["unsupported"] == 1
        rows = store.query("SELECT action_id, status, support, argument, threshold, policy_source FROM action_verdicts")[1]
    # every verdict the check printed, the ignored final answer included, as it printed it
    assert {r[0]: r[1:5] for r in rows} == {k: (v["status"], v["support"], v["argument"], v["threshold"])
                                           for k, v in verdicts.items()}
    assert {r[5] for r in rows} == {str(policy)}
