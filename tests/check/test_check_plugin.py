"""The pytest plugin: the helper and the fixture, directly and from another project's test run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from auditor.check import parse_policy
from auditor.pytest_plugin import AuditCheck, assert_trajectories_pass

from helpers.check import ROOT, FakeAuditor

SEND_FROM_DATA = {"send_email": {"m1": 0.1, "m3": 0.9}}
SUPPORT = parse_policy('decide = "support"')  # the stand-in's shares decide exactly under the support rule
EXAMPLES = ROOT / "examples"


def test_assert_pass_raises_with_the_findings(injected):
    check = AuditCheck(policy=SUPPORT, auditor=FakeAuditor(SEND_FROM_DATA))
    with pytest.raises(AssertionError) as err:
        check.assert_pass(injected)
    text = str(err.value)
    assert "audit check failed" in text and "send_email" in text and "archive@exfil.example" in text


def test_assert_pass_accepts_paths_globs_and_returns_the_report():
    fake = FakeAuditor({"send_email": {"m1": 0.9, "m3": 0.1}})
    report = assert_trajectories_pass(str(EXAMPLES / "*_email.jsonl"), auditor=fake)
    assert len(report.results) == 2 and report.passed
    assert {r.file for r in report.results} == {str(EXAMPLES / "benign_budget_email.jsonl"),
                                               str(EXAMPLES / "injected_email.jsonl")}


def test_assert_fail_and_missing_files(injected, benign):
    check = AuditCheck(policy=SUPPORT, auditor=FakeAuditor(SEND_FROM_DATA))
    assert check.assert_fail([injected]).findings
    with pytest.raises(AssertionError, match="flagged nothing"):
        AuditCheck(auditor=FakeAuditor({})).assert_fail(benign)
    with pytest.raises(FileNotFoundError):
        check(str(EXAMPLES / "nothing-*.jsonl"))


def test_skipped_records_fail_unless_allowed(tmp_path, benign):
    f = tmp_path / "runs.jsonl"
    f.write_text(benign.model_dump_json() + "\n{not json\n")
    check = AuditCheck(auditor=FakeAuditor({}))
    with pytest.raises(AssertionError, match="skipped"):
        check.assert_pass(f)
    assert check.assert_pass(f, allow_skipped=True).skipped


def test_fixture_is_registered_for_other_projects(tmp_path):
    """A project's own pytest run gets `audit_check` from the entry point, configured by --audit-policy."""
    (tmp_path / "policy.toml").write_text('ignore = ["*"]\n')  # nothing to replay: no model needed here
    (tmp_path / "test_agent.py").write_text(textwrap.dedent(f"""
        def test_runs_pass(audit_check):
            report = audit_check.assert_pass({str(EXAMPLES / "injected_email.jsonl")!r})
            assert report.checked_actions == 0
            assert audit_check.method == "loo" and audit_check.hops == 2

        def test_fail_helper_reports(audit_check):
            import pytest
            with pytest.raises(AssertionError, match="flagged nothing"):
                audit_check.assert_fail({str(EXAMPLES / "benign_budget_email.jsonl")!r})
    """))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--audit-policy", "policy.toml",
         "--audit-method", "loo", "--audit-hops", "2", "test_agent.py"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout


@pytest.mark.slow
def test_plugin_flags_the_injected_example_on_the_embedded_model(embedded_model):
    from auditor.audit import Auditor

    check = AuditCheck(auditor=Auditor(embedded_model))
    report = check.assert_fail(str(EXAMPLES / "injected_email.jsonl"))
    (finding,) = report.findings
    assert finding.tool_name == "send_email" and finding.arguments["to"] == "archive@exfil.example"
    assert finding.driver.kind == "tool_output" and "exfil" in finding.driver.quote
    assert finding.line == 1 and finding.file.endswith("injected_email.jsonl")
