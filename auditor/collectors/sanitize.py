"""What every reader and both receivers apply to untrusted input, so that one rule holds
everywhere: whatever is accepted can be written as UTF-8 JSON and stored.

- Nesting is bounded (`MAX_DEPTH` levels of objects and lists, counted from the record: a
  trajectory, a span); deeper records are rejected with a message naming the limit. JSON too deep
  for Python's parser raises `DepthError`, not `RecursionError`.
- A lone UTF-16 surrogate (JSON allows ``"\\ud800"``; UTF-8 cannot hold it) is replaced by
  U+FFFD and reported by field, never passed on to crash a writer later.
- Text files are decoded line by line: a line with invalid UTF-8 is read with U+FFFD in place of
  the bad bytes and reported with its line number. Lines end at ``\\n`` only (JSON text may hold a
  raw U+2028 or ``\\x1c``, which ``str.splitlines`` would split on).
"""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path
from typing import Any, Iterator

from pydantic import ValidationError

from auditor.collectors.issues import LoadIssue
from auditor.trajectory import MAX_NESTING, Trajectory

MAX_DEPTH = MAX_NESTING
_LONE = re.compile("[\ud800-\udfff]")
_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF][0-9a-fA-F]{2}")
_ESCAPE_B = re.compile(rb"\\u[dD][89abcdefABCDEF][0-9a-fA-F]{2}")
_CONTAINERS = (dict, list, tuple)


class DepthError(ValueError):
    """A record nests deeper than `MAX_DEPTH` levels."""

    def __init__(self, limit: int = MAX_DEPTH):
        super().__init__(f"nested deeper than {limit} levels (the limit)")


def loads(text: str | bytes) -> Any:
    """`json.loads`, except that nesting too deep for the parser raises `DepthError`, and bytes
    must be UTF-8 (`UnicodeDecodeError` otherwise: ``json.loads`` would let encoded surrogates
    through, and guess UTF-16 or UTF-32)."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8")
    try:
        return json.loads(text)
    except RecursionError:
        raise DepthError() from None


def holds_lone_surrogate(data: Any) -> bool:
    """Whether parsed JSON holds a lone surrogate anywhere: one C-speed serialization (UTF-8
    cannot encode one) instead of a walk; the walk only when it is too deep to serialize."""
    try:
        json.dumps(data, ensure_ascii=False, check_circular=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except RecursionError:
        return has_lone_surrogate(data)
    return False


def may_hold_surrogates(text: str | bytes) -> bool:
    """Whether JSON text has a ``\\uD800``-``\\uDFFF`` escape (the only way a lone surrogate gets in;
    valid pairs match too and come out whole). A fast test before walking the parsed value."""
    pattern = _ESCAPE_B if isinstance(text, (bytes, bytearray)) else _ESCAPE
    return pattern.search(text) is not None


def too_deep(value: Any, limit: int = MAX_DEPTH, level: int = 1) -> bool:
    """Whether containers nest deeper than ``limit``; ``value`` itself is at ``level``."""
    if not isinstance(value, _CONTAINERS):
        return False
    stack = [(value, level)]
    while stack:
        obj, depth = stack.pop()
        if depth > limit:
            return True
        children = obj.values() if isinstance(obj, dict) else obj
        stack.extend((c, depth + 1) for c in children if isinstance(c, _CONTAINERS))
    return False


def too_deep_at(value: Any, limit: int = MAX_DEPTH, level: int = 1) -> str | None:
    """The dotted path of a container nested deeper than ``limit`` (None if there is none)."""
    stack: list[tuple[Any, int, str]] = [(value, level, "")]
    while stack:
        obj, depth, path = stack.pop()
        if not isinstance(obj, _CONTAINERS):
            continue
        if depth > limit:
            parts = path.split(".")
            return ".".join(parts[:6]) + (f"... ({len(parts)} levels)" if len(parts) > 6 else "") if path else "<root>"
        prefix = f"{path}." if path else ""
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        stack.extend((v, depth + 1, f"{prefix}{k}") for k, v in items)
    return None


def fix_text(text: str) -> str:
    """Lone surrogates -> U+FFFD."""
    return _LONE.sub("\ufffd", text)


def has_lone_surrogate(value: Any) -> bool:
    """Whether any string (or key) in ``value`` holds a lone surrogate."""
    stack = [value]
    while stack:
        obj = stack.pop()
        if isinstance(obj, str):
            if _LONE.search(obj):
                return True
        elif isinstance(obj, dict):
            for k, v in obj.items():
                if isinstance(k, str) and _LONE.search(k):
                    return True
                stack.append(v)
        elif isinstance(obj, (list, tuple)):
            stack.extend(obj)
    return False


def clean(value: Any) -> tuple[Any, list[str]]:
    """``value`` with every lone surrogate replaced by U+FFFD (dicts and lists fixed in place),
    and the dotted paths of the strings that changed (``messages.0.content``)."""
    if isinstance(value, str):
        fixed = fix_text(value)
        return fixed, ([""] if fixed != value else [])
    paths: list[str] = []
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        obj, path = stack.pop()
        prefix = f"{path}." if path else ""
        if isinstance(obj, dict):
            if any(isinstance(k, str) and _LONE.search(k) for k in obj):
                items = list(obj.items())
                obj.clear()
                for k, v in items:
                    if isinstance(k, str) and _LONE.search(k):
                        paths.append(f"{prefix}{fix_text(k)} (key)")
                        k = fix_text(k)
                    obj[k] = v
            for k, v in obj.items():
                if isinstance(v, str):
                    if _LONE.search(v):
                        obj[k] = fix_text(v)
                        paths.append(f"{prefix}{k}")
                elif isinstance(v, (dict, list)):
                    stack.append((v, f"{prefix}{k}"))
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                if isinstance(v, str):
                    if _LONE.search(v):
                        obj[i] = fix_text(v)
                        paths.append(f"{prefix}{i}")
                elif isinstance(v, (dict, list)):
                    stack.append((v, f"{prefix}{i}"))
    return value, sorted(paths)


def surrogate_issues(paths: list[str], file: str, line: int | None, span_id: str | None = None) -> list[LoadIssue]:
    return [LoadIssue(file, "lone UTF-16 surrogate replaced by U+FFFD", line=line, span_id=span_id, field=p or None,
                      severity="warning") for p in paths]


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """How deep objects and arrays nest in JSON text (strings skipped); when it cannot exceed
    `MAX_DEPTH`, an upper bound within it. Counted in C except for the brackets themselves."""
    if text.count("{") + text.count("[") <= MAX_DEPTH:  # no more openings than the limit: done
        return MAX_DEPTH
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if len(brackets) <= 2 * MAX_DEPTH:
        return len(brackets) // 2 if brackets else 0  # an upper bound, within the limit
    depth = deepest = 0
    for c in brackets:
        if c in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def check_trajectory(traj: Trajectory, file: str, line: int | None = None,
                     span_id: str | None = None) -> tuple[Trajectory | None, list[LoadIssue]]:
    """The last step of every reader, whatever built the trajectory (a JSONL line, spans, a log):
    one nested deeper than `MAX_DEPTH` is rejected (an error naming the field); lone surrogates
    are replaced by U+FFFD (a warning per field). Cheap when all is well: one serialization (which
    fails on a lone surrogate) and a count of brackets."""
    try:
        text = traj.to_jsonl_line()
    except Exception:  # noqa: BLE001 - a lone surrogate, or pydantic's own depth limit (~255)
        text = None
    if text is not None:
        if json_depth(text) <= MAX_DEPTH:
            return traj, []
        return None, [LoadIssue(file, f"trajectory {traj.id!r} {DepthError()}", line=line, span_id=span_id,
                                field=too_deep_at(json.loads(text)))]
    try:
        doc = traj.model_dump(mode="python")
    except Exception:  # noqa: BLE001 - pydantic's own depth limit: deeper than ours anyway
        return None, [LoadIssue(file, f"trajectory {traj.id!r} {DepthError()}", line=line, span_id=span_id)]
    if too_deep(doc):
        return None, [LoadIssue(file, f"trajectory {traj.id!r} {DepthError()}", line=line, span_id=span_id,
                                field=too_deep_at(doc))]
    doc, paths = clean(doc)
    issues = surrogate_issues(paths, file, line, span_id)
    try:
        return Trajectory.model_validate(doc), issues
    except ValidationError as exc:  # e.g. two ids that differed only in their bad characters
        err = exc.errors(include_url=False)[0]
        return None, issues + [LoadIssue(file, f"after replacing lone surrogates: {err['msg']}", line=line,
                                         span_id=span_id, field=".".join(str(p) for p in err.get("loc", ())) or None)]


# -- text files ----------------------------------------------------------------------------------


def _decode(raw: bytes, file: str, line: int, issues: list[LoadIssue]) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.append(LoadIssue(file, f"invalid UTF-8 (first bad byte at column {exc.start + 1}); read with U+FFFD "
                                      "in place of the bad bytes", line=line, severity="warning"))
        return raw.decode("utf-8", "replace")


def iter_lines(path: str | Path, issues: list[LoadIssue]) -> Iterator[tuple[int, str]]:
    """(line number, text) for each line of a file, streamed; a UTF-8 BOM is dropped, invalid
    UTF-8 reported (a warning in ``issues``) and replaced."""
    file = str(path)
    with Path(path).open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            yield lineno, _decode(raw, file, lineno, issues).rstrip("\r\n")


def read_text(path: str | Path, issues: list[LoadIssue]) -> str:
    """A whole file as text (lines joined by ``\\n``), invalid UTF-8 reported per line."""
    data = Path(path).read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    file = str(path)
    return "\n".join(_decode(raw, file, i, issues) for i, raw in enumerate(data.split(b"\n"), start=1))


def lines_of(text: str) -> list[str]:
    """Lines split at ``\\n`` only (a trailing ``\\r`` dropped): line numbers match the file's."""
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
