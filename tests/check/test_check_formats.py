"""Every output format, validated: JUnit parses as XML, SARIF has the 2.1.0 keys, GitHub commands escape."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from rich.console import Console

from auditor.check import SkippedRecord, check_audits, parse_policy
from auditor.check import formats

from helpers.check import build_audit

POLICY = parse_policy("decide = 'support'\nthreshold = 0.5")


def _report(injected, benign):
    bad = build_audit(injected, {0: {"m0": 0.3, "m1": 0.7}, 1: {"m1": 0.2, "m3": 0.8}})
    good = build_audit(benign, {0: {"m1": 1.0}, 1: {"m1": 0.6, "m3": 0.4}, 2: {"m1": 0.7, "m5": 0.3}})
    report = check_audits([(bad, "runs/a.jsonl", 1), (good, "runs/a.jsonl", 2)], POLICY)
    report.skipped.append(SkippedRecord(file="runs/a.jsonl", line=3, message="runs/a.jsonl:3: invalid JSON"))
    return report


def test_junit_is_xml_with_one_failure_per_finding(injected, benign):
    root = ET.fromstring(formats.to_junit(_report(injected, benign)))
    assert root.tag == "testsuites"
    assert root.get("failures") == "1" and root.get("errors") == "1"
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    bad = suites["injected-inbox-forward"]
    assert bad.get("tests") == "3" and bad.get("failures") == "1" and bad.get("skipped") == "1"
    (failure,) = bad.iter("failure")
    assert failure.get("type") == "low-support"
    assert "archive@exfil.example" in failure.text and "tool_output" in failure.text
    assert suites["benign-budget-email"].get("failures") == "0"
    assert suites["input records"].get("errors") == "1"
    case = next(bad.iter("testcase"))
    assert case.get("file") == "runs/a.jsonl" and case.get("line") == "1"


def test_sarif_has_the_2_1_0_shape(injected, benign):
    log = formats.to_sarif(_report(injected, benign))
    json.dumps(log)  # serialisable
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "auditor" and {r["id"] for r in driver["rules"]} >= {"low-support"}
    (result,) = run["results"]
    assert result["ruleId"] == "low-support" and result["level"] == "error"
    assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    assert result["message"]["text"]
    loc = result["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "runs/a.jsonl" and loc["region"]["startLine"] == 1
    props = result["properties"]
    assert props["arguments"]["to"] == "archive@exfil.example" and props["driver"]["kind"] == "tool_output"
    assert 0 <= props["support"] < props["threshold"]
    inv = run["invocations"][0]
    assert inv["executionSuccessful"] is True and inv["toolExecutionNotifications"][0]["level"] == "warning"


def test_json_round_trips_with_a_summary(injected, benign):
    data = json.loads(formats.to_json(_report(injected, benign)))
    assert data["summary"]["findings"] == 1 and data["summary"]["exit_code"] == 1
    (finding,) = [f for r in data["results"] for f in r["findings"]]
    assert finding["tool_name"] == "send_email" and finding["driver"]["quote"]
    assert data["policy"]["threshold"] == 0.5


def test_github_annotations_point_at_file_and_line_and_escape(injected, benign):
    text = formats.to_github(_report(injected, benign))
    lines = text.strip().splitlines()
    assert lines[0].startswith("::error file=runs/a.jsonl,line=1,title=audit check%3A send_email unsupported (low-support)::")
    assert "\n" not in lines[0]
    assert "archive@exfil.example" in lines[0]
    assert lines[1].startswith("::warning file=runs/a.jsonl,line=3,")
    assert formats._gh_data("50%\nx") == "50%25%0Ax"


def test_terminal_summary_shows_action_driver_and_verdict(injected, benign):
    console = Console(record=True, width=160)
    formats.render_terminal(_report(injected, benign), console, verbose=True)
    text = console.export_text()
    assert "Unsupported actions" in text and "send_email" in text and "tool_output" in text
    assert "FAIL" in text and "1 unsupported action(s)" in text and "skipped" in text


def test_terminal_shows_the_calibrated_number_and_its_words_when_the_verdict_decides(injected):
    """Under decide = "verdict" a finding leads with p(unsupported) and the evidence lines, the
    support it read after (not "support < threshold", which that policy does not enforce)."""
    from auditor.provenance import ProvenanceIndex, provenance_of

    verdict = parse_policy('[verdict.attribution]\nintercept = -2.0\nthreshold = 0.5\n'
                           'weights = { data_share = 6.0 }\nmeans = { data_share = 0.5 }\n')
    bad = build_audit(injected, {0: {"m0": 0.3, "m1": 0.7}, 1: {"m1": 0.2, "m3": 0.8}})
    index = ProvenanceIndex(bad.segments)
    for attr in bad.actions:
        attr.provenance = provenance_of(attr.action, index)
    report = check_audits([(bad, "runs/a.jsonl", 1)], verdict)
    (finding,) = report.findings
    console = Console(record=True, width=200)
    formats.render_terminal(report, console, verbose=True)
    text = console.export_text()
    assert f"p(unsupported) {finding.probability:.2f} ≥ 0.50" in text and "support < " not in text
    assert finding.evidence and f"· {finding.evidence[0]}" in text
