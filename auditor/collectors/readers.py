"""Readers for span dump files: OTLP JSON lines and the Python SDK console format.

Every malformed record becomes a `LoadIssue` with file and line (and span id and field where
there is one); every valid record is kept. Whatever goes wrong with one record (a bug included)
costs that record, never the file. Lines end at ``\\n`` only; invalid UTF-8 and lone surrogates
are read as U+FFFD and reported (`auditor.collectors.sanitize`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from auditor.collectors.issues import LoadIssue
from auditor.collectors.otlp_json import locate, parse_otlp_json, spans_from_otlp_json
from auditor.collectors.sanitize import (DepthError, clean, holds_lone_surrogate, lines_of, loads, may_hold_surrogates,
                                         read_text)
from auditor.collectors.sdk_spans import span_from_console
from auditor.collectors.spans import SpanError, SpanRecord


def _span_issue(file: str, line: int | None, exc: SpanError, severity: str = "error") -> LoadIssue:
    return LoadIssue(file, str(exc), line=line, span_id=exc.span_id, field=exc.field, severity=severity)


def _internal(file: str, line: int | None, exc: BaseException) -> LoadIssue:
    """A record a reader failed on in a way it does not foresee (a bug): skipped, with the cause."""
    return LoadIssue(file, f"internal error reading this record ({type(exc).__name__}: {str(exc)[:200]})", line=line)


def read_otlp_json(path: str | Path) -> tuple[list[SpanRecord], list[LoadIssue]]:
    """One OTLP JSON export per line (the OTel file exporter, ``run.jsonl``, the receiver's
    output). A single pretty-printed export (or a JSON list of exports) is accepted too."""
    path = Path(path)
    file = str(path)
    spans: list[SpanRecord] = []
    issues: list[LoadIssue] = []
    text = read_text(path, issues)

    def take_line(raw: str, line: int) -> None:
        errors: list[SpanError] = []
        warnings: list[SpanError] = []
        try:
            if raw.lstrip().startswith("["):  # a JSON list of exports on one line
                take_doc(loads(raw), raw, line)
                return
            spans.extend(parse_otlp_json(raw, source=f"{file}:{line}", errors=errors, warnings=warnings))
        except json.JSONDecodeError as exc:
            issues.append(LoadIssue(file, f"invalid JSON: {exc.msg} at column {exc.colno}", line=line))
        except SpanError as exc:
            issues.append(_span_issue(file, line, exc))
        except DepthError as exc:
            issues.append(LoadIssue(file, f"the export is {exc}", line=line))
        except Exception as exc:  # noqa: BLE001 - one record, not the file
            issues.append(_internal(file, line, exc))
        issues.extend(_span_issue(file, line, w, "warning") for w in warnings)
        issues.extend(_span_issue(file, line, e) for e in errors)

    def take_doc(doc: Any, raw: str, line: int) -> None:
        """An already parsed document (a pretty-printed export, or a list of exports)."""
        if may_hold_surrogates(raw) and holds_lone_surrogate(doc):
            doc, paths = clean(doc)
            for p in paths:
                sid, fld = locate(doc, p)
                issues.append(LoadIssue(file, "lone UTF-16 surrogate replaced by U+FFFD", line=line, span_id=sid,
                                        field=fld, severity="warning"))
        for d in doc if isinstance(doc, list) else [doc]:
            if not isinstance(d, dict):
                issues.append(LoadIssue(file, f"expected an OTLP export object, got {type(d).__name__}", line=line))
                continue
            errors: list[SpanError] = []
            try:
                spans.extend(spans_from_otlp_json(d, source=f"{file}:{line}", errors=errors))
            except SpanError as exc:
                issues.append(_span_issue(file, line, exc))
            except Exception as exc:  # noqa: BLE001 - one record, not the file
                issues.append(_internal(file, line, exc))
            issues.extend(_span_issue(file, line, e) for e in errors)

    lines = lines_of(text)
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is not None:
        try:
            json.loads(lines[first])
        except (json.JSONDecodeError, RecursionError):
            try:  # not line-delimited: one document over many lines?
                doc = loads(text)
            except (json.JSONDecodeError, DepthError):
                pass
            else:
                take_doc(doc, text, first + 1)
                return spans, issues
    for lineno, raw in enumerate(lines, start=1):
        if raw.strip():
            take_line(raw, lineno)
    return spans, issues


def read_console(path: str | Path) -> tuple[list[SpanRecord], list[LoadIssue]]:
    """``ConsoleSpanExporter`` output: ``span.to_json()`` objects, usually pretty-printed over
    many lines and simply concatenated (a JSON list of them is accepted too)."""
    path = Path(path)
    file = str(path)
    spans: list[SpanRecord] = []
    issues: list[LoadIssue] = []
    text = read_text(path, issues)
    decoder = json.JSONDecoder()
    pos = 0
    n = len(text)

    mark = [0, 1]  # (position, its line): positions only grow, so lines are counted once

    def line_of(p: int) -> int:
        if p < mark[0]:
            return text.count("\n", 0, p) + 1
        mark[1] += text.count("\n", mark[0], p)
        mark[0] = p
        return mark[1]

    def take(obj: Any, at: int, end: int) -> None:
        line = line_of(at)
        if may_hold_surrogates(text[at:end]) and holds_lone_surrogate(obj):
            obj, paths = clean(obj)
            issues.extend(LoadIssue(file, "lone UTF-16 surrogate replaced by U+FFFD", line=line, field=p or None,
                                    severity="warning") for p in paths)
        for o in obj if isinstance(obj, list) else [obj]:
            try:
                spans.append(span_from_console(o, source=f"{file}:{line}"))
            except SpanError as exc:
                issues.append(_span_issue(file, line, exc))
            except Exception as exc:  # noqa: BLE001 - one record, not the file
                issues.append(_internal(file, line, exc))

    def resume(after: int) -> int:
        """Where the next object that starts a line begins (-1: none)."""
        nxt = text.find("\n{", after)
        return -1 if nxt == -1 else nxt + 1

    while pos < n:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            break
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            issues.append(LoadIssue(file, f"invalid JSON: {exc.msg}", line=line_of(exc.pos)))
            pos = resume(max(exc.pos, pos + 1))
            if pos == -1:
                break
            continue
        except RecursionError:
            issues.append(LoadIssue(file, f"the record is {DepthError()}", line=line_of(pos)))
            pos = resume(pos + 1)
            if pos == -1:
                break
            continue
        take(obj, pos, end)
        pos = end
    return spans, issues
