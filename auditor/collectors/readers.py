"""Readers for span dump files: OTLP JSON lines and the Python SDK console format.

Every malformed record becomes a `LoadIssue` with file and line; every valid record is kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from auditor.collectors.issues import LoadIssue

from auditor.collectors.otlp_json import spans_from_otlp_json
from auditor.collectors.sdk_spans import span_from_console
from auditor.collectors.spans import SpanError, SpanRecord


def _span_issue(file: str, line: int | None, exc: SpanError) -> LoadIssue:
    return LoadIssue(file, str(exc), line=line, span_id=exc.span_id, field=exc.field)


def otlp_json_line(raw: str, file: str, line: int) -> tuple[list[SpanRecord], list[LoadIssue]]:
    """One line of an OTLP JSON lines file (an export, or a JSON list of exports): its spans and
    the issues of its bad records, named ``file:line``."""
    spans: list[SpanRecord] = []
    issues: list[LoadIssue] = []
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        return spans, [LoadIssue(file, f"invalid JSON: {exc.msg} at column {exc.colno}", line=line)]
    _take_otlp_doc(doc, file, line, spans, issues)
    return spans, issues


def _take_otlp_doc(doc: Any, file: str, line: int, spans: list[SpanRecord], issues: list[LoadIssue]) -> None:
    for d in doc if isinstance(doc, list) else [doc]:
        if not isinstance(d, dict):
            issues.append(LoadIssue(file, f"expected an OTLP export object, got {type(d).__name__}", line=line))
            continue
        errors: list[SpanError] = []
        try:
            spans.extend(spans_from_otlp_json(d, source=f"{file}:{line}", errors=errors))
        except SpanError as exc:
            issues.append(_span_issue(file, line, exc))
        issues.extend(_span_issue(file, line, e) for e in errors)


def read_otlp_json(path: str | Path) -> tuple[list[SpanRecord], list[LoadIssue]]:
    """One OTLP JSON export per line (the OTel file exporter, ``run.jsonl``, the receiver's
    output). A single pretty-printed export (or a JSON list of exports) is accepted too.
    (`auditor.collectors.streaming` reads the line-delimited form without holding it whole.)"""
    path = Path(path)
    file = str(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    spans: list[SpanRecord] = []
    issues: list[LoadIssue] = []
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is not None:
        try:
            json.loads(lines[first])
        except json.JSONDecodeError:
            try:  # not line-delimited: one document over many lines?
                doc = json.loads(text)
            except json.JSONDecodeError:
                pass
            else:
                _take_otlp_doc(doc, file, first + 1, spans, issues)
                return spans, issues
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        got, bad = otlp_json_line(raw, file, lineno)
        spans.extend(got)
        issues.extend(bad)
    return spans, issues


def read_console(path: str | Path) -> tuple[list[SpanRecord], list[LoadIssue]]:
    """``ConsoleSpanExporter`` output: ``span.to_json()`` objects, usually pretty-printed over
    many lines and simply concatenated (a JSON list of them is accepted too)."""
    path = Path(path)
    file = str(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    spans: list[SpanRecord] = []
    issues: list[LoadIssue] = []
    decoder = json.JSONDecoder()
    pos = 0
    n = len(text)

    def line_of(p: int) -> int:
        return text.count("\n", 0, p) + 1

    def take(obj: Any, at: int) -> None:
        line = line_of(at)
        if isinstance(obj, list):
            for o in obj:
                take_one(o, line)
        else:
            take_one(obj, line)

    def take_one(obj: Any, line: int) -> None:
        try:
            spans.append(span_from_console(obj, source=f"{file}:{line}"))
        except SpanError as exc:
            issues.append(_span_issue(file, line, exc))

    while pos < n:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            break
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            issues.append(LoadIssue(file, f"invalid JSON: {exc.msg}", line=line_of(exc.pos)))
            # resume at the next object that starts a line
            nxt = text.find("\n{", max(exc.pos, pos + 1))
            if nxt == -1:
                break
            pos = nxt + 1
            continue
        take(obj, pos)
        pos = end
    return spans, issues
