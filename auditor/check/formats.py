"""The formats CI systems read: a rich terminal summary, JUnit XML, SARIF 2.1.0, JSON and GitHub
Actions workflow commands. Each is a pure function of a `CheckReport`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from rich.console import Console
from rich.table import Table

from auditor import __version__
from auditor.check.findings import CheckReport, Finding
from auditor.check.scoring import RULES

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
INFO_URI = "https://github.com/auditor-dev/auditor"


# -- terminal -----------------------------------------------------------------------------------


def render_terminal(report: CheckReport, console: Console | None = None, verbose: bool = False) -> None:
    """Findings as a table (action, driving segment with quote, shares), then a one-line summary."""
    console = console or Console()
    for s in report.skipped:
        console.print(f"[yellow]skipped[/] {s.message}", highlight=False)
    for r in report.errors:
        console.print(f"[yellow]not audited[/] {r.file or ''}{':' + str(r.line) if r.line else ''} "
                      f"{r.trajectory_id}: {r.error}", highlight=False)
    if report.findings:
        console.print(f"[bold red]Unsupported actions[/] ({len(report.findings)})", highlight=False)
    for f in report.findings:
        console.print(f"[red]✗[/] [bold]{_escape(f.location)}[/]  {_escape(f.trajectory_id)}  step {f.step}", highlight=False)
        console.print(f"  {_escape(_call_text(f))}", highlight=False, soft_wrap=False, overflow="fold")
        if f.argument is not None:
            whole = "" if f.action_support is None else f"; the call as a whole: {f.action_support:.2f}"
            console.print(f"  judged by its [bold]{_escape(f.argument)}[/] argument{whole}", highlight=False)
        shares = (f"authority {f.authority_share:.0%}, data {f.data_share:.0%} of the "
                  f"{'argument' if f.argument else 'input'} mass"
                  + (f"; {f.reasoning_flow:.0%} through reasoning" if f.reasoning_flow >= 0.005 else ""))
        if f.probability is not None:  # the calibrated verdict decided: its number, then the support it read
            console.print(f"  p(unsupported) [red]{f.probability:.2f}[/] ≥ {f.probability_threshold or 0.0:.2f}  "
                          f"(support {f.support:.2f}: {shares})", highlight=False)
            for line in f.evidence:
                console.print(f"    · {_escape(line)}", highlight=False)
        else:
            console.print(
                f"  support [red]{f.support:.2f}[/] < {f.threshold:.2f}  ({shares})"
                + (f"  [dim]{', '.join(f.rules)}[/]" if f.rules != ["low-support"] else ""),
                highlight=False,
            )
        if f.driver is not None:
            console.print(f"  driven by [bold]{f.driver.kind}[/] {_escape(f.driver.label or f.driver.segment_id)} "
                          f"({f.driver.share:.0%})", highlight=False)
            if f.driver.quote:
                console.print(f'    [italic]"{_escape(f.driver.quote)}"[/]', highlight=False)
    if verbose:
        table = Table(title="Checked actions", title_justify="left")
        for col in ("trajectory", "action", "judged by", "status", "p(unsupported)", "support", "threshold",
                    "top driver"):
            table.add_column(col, overflow="fold")
        for r in report.results:
            for v in r.verdicts:
                style = {"passed": "green", "failed": "red", "ignored": "dim"}[v.status]
                table.add_row(
                    _escape(r.trajectory_id),
                    _escape(f"{v.tool_name or v.action_kind}"),
                    "-" if v.status == "ignored" else _escape(v.argument or "whole call"),
                    f"[{style}]{v.status}[/]",
                    "-" if v.probability is None else f"{v.probability:.2f}",
                    "-" if v.support is None else f"{v.support:.2f}",
                    "-" if v.threshold is None else f"{v.threshold:.2f}",
                    "-" if v.top_driver is None else _escape(f"{v.top_driver.kind} {v.top_driver.label} ({v.top_driver.share:.0%})"),
                )
        console.print(table)
    colour = "red" if report.findings else ("yellow" if report.skipped or report.errors else "green")
    verdict = "FAIL" if report.findings else ("INCOMPLETE" if report.skipped or report.errors else "PASS")
    console.print(f"[bold {colour}]{verdict}[/] {report.summary()}", highlight=False)


def _call_text(f: Finding) -> str:
    if f.action_kind == "tool_call" and f.tool_name:
        args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in f.arguments.items())
        return f"{f.tool_name}({args[:300] + ('…' if len(args) > 300 else '')})"
    return f.action_text


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


# -- JSON ---------------------------------------------------------------------------------------


def to_json(report: CheckReport, indent: int | None = 2) -> str:
    data = report.model_dump(mode="json")
    data["summary"] = {
        "passed": report.passed,
        "exit_code": report.exit_code(),
        "trajectories": len(report.results),
        "checked_actions": report.checked_actions,
        "findings": len(report.findings),
        "skipped": len(report.skipped),
        "errors": len(report.errors),
        "text": report.summary(),
    }
    data["auditor_version"] = __version__
    return json.dumps(data, indent=indent, ensure_ascii=False)


# -- JUnit XML ----------------------------------------------------------------------------------


def to_junit(report: CheckReport) -> str:
    """One <testsuite> per trajectory, one <testcase> per action; unsupported actions fail,
    ignored ones are skipped, skipped input records and failed audits are errors."""
    root = ET.Element("testsuites", name="audit check")
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for r in report.results:
        suite = ET.SubElement(root, "testsuite", name=r.trajectory_id)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if r.file:
            suite.set("file", r.file)
        by_action = {f.action_id: f for f in r.findings}
        for v in r.verdicts:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=r.trajectory_id,
                name=f"step {v.step}: {v.tool_name or v.action_kind}",
                time=f"{v.seconds:.3f}",
            )
            if r.file:
                case.set("file", r.file)
            if r.line:
                case.set("line", str(r.line))
            counts["tests"] += 1
            if v.status == "ignored":
                ET.SubElement(case, "skipped", message="ignored by policy")
                counts["skipped"] += 1
            elif v.action_id in by_action:
                f = by_action[v.action_id]
                fail = ET.SubElement(case, "failure", message=f.message, type=f.rule)
                fail.text = _finding_details(f)
                counts["failures"] += 1
        if r.error is not None:
            case = ET.SubElement(suite, "testcase", classname=r.trajectory_id, name="audit")
            ET.SubElement(case, "error", message=r.error, type="audit-error")
            counts["tests"] += 1
            counts["errors"] += 1
        for k, n in counts.items():
            suite.set(k, str(n))
            total[k] += n
        suite.set("time", f"{r.seconds:.3f}")
    if report.skipped:
        suite = ET.SubElement(root, "testsuite", name="input records")
        for s in report.skipped:
            case = ET.SubElement(suite, "testcase", classname="input", name=f"{s.file}:{s.line or 0}")
            ET.SubElement(case, "error", message=s.message, type="skipped-record")
        n = len(report.skipped)
        suite.set("tests", str(n))
        suite.set("errors", str(n))
        suite.set("failures", "0")
        suite.set("skipped", "0")
        total["tests"] += n
        total["errors"] += n
    for k, n in total.items():
        root.set(k, str(n))
    root.set("time", f"{report.seconds:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _finding_details(f: Finding) -> str:
    lines = [
        f"action: {f.action_text}",
        f"arguments: {json.dumps(f.arguments, ensure_ascii=False)}",
        f"support: {f.support:.3f} (threshold {f.threshold:.3f}); authority share {f.authority_share:.3f}, "
        f"data share {f.data_share:.3f}, reasoning flow {f.reasoning_flow:.3f}",
        f"rules: {', '.join(f.rules)}",
    ]
    if f.argument is not None:
        lines.insert(2, f"judged by argument: {f.argument} (decisive arguments' supports: "
                        + ", ".join(f"{k} {v:.3f}" for k, v in f.argument_supports.items())
                        + ("" if f.action_support is None else f"; whole call {f.action_support:.3f}") + ")")
    if f.driver is not None:
        lines.append(f"driving segment: {f.driver.kind} '{f.driver.label}' [{f.driver.segment_id}] share {f.driver.share:.3f}")
        if f.driver.quote:
            lines.append(f"quote: {f.driver.quote}")
    return "\n".join(lines)


# -- SARIF 2.1.0 --------------------------------------------------------------------------------


def to_sarif(report: CheckReport) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one run, one rule per check rule, one result per finding (error level),
    located at the trajectory's file and line; shares and the quote go in ``properties``."""
    rule_ids = list(RULES)
    rules = [
        {
            "id": rid,
            "name": "".join(w.capitalize() for w in rid.split("-")),
            "shortDescription": {"text": RULES[rid].split(";")[0]},
            "fullDescription": {"text": RULES[rid]},
            "defaultConfiguration": {"level": "error"},
            "helpUri": f"{INFO_URI}#audit-check",
        }
        for rid in rule_ids
    ]
    results = []
    for f in report.findings:
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": rule_ids.index(f.rule),
            "level": "error",
            "message": {"text": f.message},
            "locations": [_sarif_location(f.file, f.line, f.trajectory_id, f.action_id)],
            "partialFingerprints": {"auditorAction/v1": f"{f.trajectory_id}:{f.step}:{f.tool_name or f.action_kind}"},
            "properties": {
                "trajectoryId": f.trajectory_id,
                "actionId": f.action_id,
                "actionKind": f.action_kind,
                "toolName": f.tool_name,
                "arguments": f.arguments,
                "support": f.support,
                "threshold": f.threshold,
                "authorityShare": f.authority_share,
                "dataShare": f.data_share,
                "reasoningFlow": f.reasoning_flow,
                "rules": f.rules,
                "driver": f.driver.model_dump() if f.driver else None,
            },
        }
        results.append(result)
    notifications = [
        {"level": "warning", "message": {"text": s.message},
         "locations": [_sarif_location(s.file, s.line, None, None)]}
        for s in report.skipped
    ] + [
        {"level": "error", "message": {"text": f"{r.trajectory_id}: {r.error}"},
         "locations": [_sarif_location(r.file, r.line, r.trajectory_id, None)]}
        for r in report.errors
    ]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "auditor",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFO_URI,
                "rules": rules,
            }
        },
        "results": results,
        "invocations": [
            {
                "executionSuccessful": not report.errors,
                "toolExecutionNotifications": notifications,
                "properties": {"model": report.model, "method": report.method, "hops": report.hops,
                               "policy": report.policy_source},
            }
        ],
        "columnKind": "unicodeCodePoints",
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def _sarif_location(file: str | None, line: int | None, trajectory_id: str | None, action_id: str | None) -> dict[str, Any]:
    loc: dict[str, Any] = {}
    if file:
        phys: dict[str, Any] = {"artifactLocation": {"uri": Path(file).as_posix()}}
        if line:
            phys["region"] = {"startLine": line}
        loc["physicalLocation"] = phys
    names = [n for n in (trajectory_id, action_id) if n]
    if names:
        loc["logicalLocations"] = [{"name": names[-1], "fullyQualifiedName": "/".join(names), "kind": "function"}]
    return loc


# -- GitHub Actions -----------------------------------------------------------------------------


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def to_github(report: CheckReport) -> str:
    """Workflow commands: ``::error file=F,line=L,title=T::message`` per finding, warnings for
    skipped records and failed audits."""
    out = []
    for f in report.findings:
        props = []
        if f.file:
            props.append(f"file={_gh_prop(f.file)}")
            props.append(f"line={f.line or 1}")
        props.append(f"title={_gh_prop(f'audit check: {f.tool_name or f.action_kind} unsupported ({f.rule})')}")
        out.append(f"::error {','.join(props)}::{_gh_data(f.message)}")
    for s in report.skipped:
        out.append(f"::warning file={_gh_prop(s.file)},line={s.line or 1},title=audit check: record skipped::{_gh_data(s.message)}")
    for r in report.errors:
        where = f"file={_gh_prop(r.file)},line={r.line or 1}," if r.file else ""
        out.append(f"::warning {where}title=audit check: not audited::{_gh_data(r.trajectory_id + ': ' + (r.error or ''))}")
    return "\n".join(out) + ("\n" if out else "")


def write_text(path: str | Path, text: str) -> Path:
    """Write atomically (a temporary file renamed over the target): a reader, or a check killed
    mid-write, sees the previous complete file or the new one, never half of one."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
