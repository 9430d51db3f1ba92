"""Malformed inputs with known verdicts, and the checks that hold the readers and receivers to them.

Shared by the property-based tests (``tests/collectors/test_fuzz_*.py``: Hypothesis draws every
choice through `DrawRng`) and the fuzz benchmark (``benchmarks/bench_fuzz.py``: a seeded
``random.Random``). Every generator takes an ``rng`` with ``randint``, ``choice`` and ``random``.

A case is a valid record (trajectory line, span dump line, OTLP export) plus, usually, one
mutation whose outcome is known:

- ``keep``: still valid (base64 ids, ``0X``-prefixed base64 ids, reordered keys, U+2028 in
  text): loaded / stored exactly as the original;
- ``warn``: kept with a warning at its place (a lone surrogate, invalid UTF-8 in a file);
- ``reject``: reported at its place (line, span id, field) and skipped; the rest kept;
- ``any``: a random value at a random place or random bytes: loaded or reported, never a crash;
  whatever is loaded is valid.

The checks return failure descriptions (empty: all good), grouped as crashes, lost (a valid
record not loaded exactly once) and wrong (a bad record loaded, not reported at its place, or a
wrong status code).
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

from auditor.collectors.sanitize import too_deep
from auditor.collectors.spans import MAX_NANOS, SpanRecord
from auditor.trajectory import INT32_MAX, MAX_NESTING, Trajectory

MARK_SURROGATE = "@@SURROGATE@@"  # replaced by a \udXXX escape in the JSON text
MARK_BAD_UTF8 = "@@BADUTF8@@"  # replaced by invalid UTF-8 bytes
BAD_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xe2\x82")
WORDS = ("read", "the", "inbox", "send", "email", "to", "alice@example.com", "file", "report.pdf", "ok",
         "naïve", "日本語", "😀", "line\u2028sep", "para\u2029", "nel\x85", "fs\x1c", "tab\t", 'quote"', "back\\slash",
         "cr\r", "{not json}", "\ufffd")
NASTY: tuple[Any, ...] = (
    math.nan, math.inf, -math.inf, 2**63, 2**64, 2**64 - 1, -1, -(2**63) - 1, 10**30, 1.5, 1e308, -0.0, True, False,
    None, "", "x" * 5000, MARK_SURROGATE, [], {}, [[[]]], {"a": {"b": {}}}, "123456789012345678901234567890",
    "NaN", "-5", "0x12", "\u2028",
)


class Rng(Protocol):
    def randint(self, a: int, b: int) -> int: ...
    def choice(self, seq: Any) -> Any: ...
    def random(self) -> float: ...


class DrawRng:
    """An `Rng` whose every choice Hypothesis draws (so failures shrink to small choices)."""

    def __init__(self, data: Any):
        from hypothesis import strategies as st

        self._data, self._st = data, st

    def randint(self, a: int, b: int) -> int:
        return self._data.draw(self._st.integers(a, b))

    def choice(self, seq: Any) -> Any:
        seq = list(seq)
        return seq[self.randint(0, len(seq) - 1)]

    def random(self) -> float:
        return self.randint(0, 1000) / 1000


@dataclass
class Verdict:
    kind: str  # keep | warn | reject | any
    what: str  # the mutation, for reports
    field: str | None = None  # expected issue field (prefix), when known
    span: int | None = None  # index of the mutated span within the export
    spans_rejected: int = 0  # for exports: how many of its spans must be rejected
    removes: bool = False  # the mutation may remove records from the input (nothing to report)


@dataclass
class Failures:
    crashes: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    def extend(self, other: "Failures") -> None:
        self.crashes += other.crashes
        self.lost += other.lost
        self.wrong += other.wrong

    def all(self) -> list[str]:
        return [f"crash: {c}" for c in self.crashes] + [f"lost: {c}" for c in self.lost] + [f"wrong: {c}" for c in self.wrong]


def text(rng: Rng, n: int | None = None) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n if n is not None else rng.randint(1, 6)))


def deep(levels: int, kind: str = "dict") -> Any:
    """Objects or lists nested ``levels`` deep; past what ``json.dumps`` can write, a marker that
    `dumps` writes out as text."""
    if levels > 500:
        return f"@@DEEP{levels}{kind[0]}@@"
    value: Any = 0
    for _ in range(levels):
        value = {"a": value} if kind == "dict" else [value]
    return value


_DEEP = re.compile(r'"@@DEEP(\d+)([dl])@@"')


def _deep_text(m: re.Match) -> str:
    n = int(m.group(1))
    return ('{"a":' * n + "0" + "}" * n) if m.group(2) == "d" else ("[" * n + "0" + "]" * n)


def dumps(doc: Any) -> bytes:
    """One JSON line (UTF-8, raw U+2028 and the like kept); markers become a lone surrogate escape
    or invalid UTF-8 bytes."""
    raw = _DEEP.sub(_deep_text, json.dumps(doc, ensure_ascii=False, allow_nan=True))
    raw = raw.replace(MARK_SURROGATE, "\\udc80" if len(raw) % 2 else "\\ud800")
    data = raw.encode("utf-8")
    if MARK_BAD_UTF8.encode() in data:
        data = data.replace(MARK_BAD_UTF8.encode(), BAD_UTF8[len(data) % len(BAD_UTF8)])
    return data


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, prefix + (i,))
    return out


def _set(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return doc


def _get(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def flip_bytes(rng: Rng, data: bytes) -> bytes:
    """Random byte-level damage: flips, a cut, an insertion."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(("flip", "cut", "insert", "delete"))
        if not b:
            break
        i = rng.randint(0, len(b) - 1)
        if op == "flip":
            b[i] = rng.randint(0, 255)
        elif op == "cut":
            del b[i:]
        elif op == "insert":
            b[i:i] = bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 4)))
        else:
            del b[i:i + rng.randint(1, 8)]
    return bytes(b).replace(b"\n", b" ")  # one line stays one line


def random_leaf(rng: Rng, doc: Any, keep_strings_at: tuple = ()) -> tuple[Any, str, bool]:
    """A random value (from `NASTY`, or nested deeper than the limit) at a random place: (doc, what,
    removes). Paths in ``keep_strings_at`` (e.g. ids) never get a string, so they cannot collide."""
    paths = _paths(doc)[1:]
    path = rng.choice(paths)
    value = rng.choice(NASTY + ("deep",))
    if value == "deep":
        value = deep(rng.choice((MAX_NESTING - 2, MAX_NESTING + 1, 300, 3000)), rng.choice(("dict", "list")))
    if path[-1:] and path[-1] in keep_strings_at and isinstance(value, str):
        value = 12.5
    old = _get(doc, path)
    removes = isinstance(old, (list, dict)) and bool(old)
    return _set(doc, path, copy.deepcopy(value)), f"{'.'.join(map(str, path))} = {str(value)[:40]!r}", removes


# -- trajectories --------------------------------------------------------------------------------


def trajectory(rng: Rng, tid: str) -> dict:
    messages: list[dict] = []
    if rng.random() < 0.5:
        messages.append({"role": "system", "content": text(rng)})
    messages.append({"role": "user", "content": text(rng)})
    for k in range(rng.randint(0, 2)):
        cid = f"call_{k}"
        messages.append({"role": "assistant", "content": text(rng, rng.randint(0, 2)),
                         "tool_calls": [{"id": cid, "name": rng.choice(("read_inbox", "send_email")),
                                         "arguments": {"to": text(rng, 1), "n": rng.randint(0, 9)}}]})
        messages.append({"role": "tool", "tool_call_id": cid, "content": text(rng)})
    messages.append({"role": "assistant", "content": text(rng)})
    doc: dict = {"id": tid, "messages": messages, "metadata": {"note": text(rng), "n": rng.randint(0, 100)}}
    if rng.random() < 0.5:
        doc["tools"] = [{"name": "send_email", "description": text(rng), "parameters": {"type": "object"}}]
    return doc


def _string_paths(doc: Any) -> list[tuple]:
    return [p for p in _paths(doc) if isinstance(_get(doc, p), str) and p[-1:] not in (("id",), ("role",),
                                                                                     ("tool_call_id",), ("name",))]


def mutate_trajectory(rng: Rng, doc: dict, earlier: list[dict]) -> tuple[bytes, Verdict]:
    """One trajectory line, mutated (or not) with a known verdict. ``earlier``: documents of lines
    before this one that load (for repeated ids)."""
    kind = rng.choice(("keep", "keep", "warn", "reject", "reject", "reject", "line", "dup", "any", "any"))
    if kind == "keep":
        if rng.random() < 0.5:
            doc = dict(reversed(list(doc.items())))
        doc["messages"][-1]["content"] += " \u2028 \x1c \x85 end"
        return dumps(doc), Verdict("keep", "keys reordered, line separators in text")
    if kind == "warn":
        path = rng.choice(_string_paths(doc))
        if rng.random() < 0.5:
            _set(doc, path, _get(doc, path) + MARK_SURROGATE)
            return dumps(doc), Verdict("warn", "lone surrogate", field=".".join(map(str, path)))
        _set(doc, path, _get(doc, path) + MARK_BAD_UTF8)
        return dumps(doc), Verdict("warn", "invalid UTF-8")
    if kind == "reject":
        steps = [
            (("schema_version",), rng.choice((2**63, 0, 2, -1)), "schema_version"),
            (("messages",), [], "messages"),
            (("messages", 0, "role"), "robot", "messages.0"),
            (("messages", 0, "content"), 5, "messages.0.content"),
            (("metadata",), {"deep": deep(rng.choice((MAX_NESTING, 300, 2000)))}, None),
            (("metadata",), "not an object", "metadata"),
            (("id",), rng.choice(("", 7, None)), "id"),
        ]
        n = len(doc["messages"])
        steps += [
            (("actions",), [{"id": "a", "kind": "final_answer", "message_index": n - 1, "step": rng.choice((2**40, -1))}],
             "actions.0.step"),
            (("actions",), [{"id": "a", "kind": "final_answer", "message_index": n - 1, "step": 0},
                            {"id": "a", "kind": "final_answer", "message_index": n - 1, "step": 1}], "actions"),
            (("actions",), [{"id": "a", "kind": "final_answer", "message_index": 2**31, "step": 0}],
             "actions.0.message_index"),
            (("messages", n - 1), {"role": "tool", "tool_call_id": "nope", "content": "x"}, None),
        ]
        path, value, fld = rng.choice(steps)
        return dumps(_set(doc, path, value)), Verdict("reject", f"{'.'.join(map(str, path))} = {str(value)[:40]}", field=fld)
    if kind == "line":
        data = dumps(doc)
        how = rng.choice(("truncate", "array", "number", "deep", "garbage"))
        if how == "truncate":
            data = data[: rng.randint(1, len(data) - 2)]
        elif how == "array":
            data = b"[" + data + b"]"
        elif how == "number":
            data = b"12345"
        elif how == "deep":
            data = b'{"id": "x", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        else:
            data = b"\x00\x01 not json {"
        return data, Verdict("reject", f"line: {how}")
    if kind == "dup" and earlier:
        first = rng.choice(earlier)
        if rng.random() < 0.5:
            return dumps(first), Verdict("keep", "identical repeat", field="dup-same")
        other = copy.deepcopy(doc)
        other["id"] = first["id"]
        other["messages"][0]["content"] = first["messages"][0]["content"] + " (changed)"
        return dumps(other), Verdict("reject", "same id, other content", field="id")
    if kind == "dup":
        return dumps(doc), Verdict("keep", "no earlier line to repeat")
    if rng.random() < 0.3:
        return flip_bytes(rng, dumps(doc)), Verdict("any", "bytes damaged", removes=True)
    doc, what, removes = random_leaf(rng, doc, keep_strings_at=("id", "tool_call_id"))
    return dumps(doc), Verdict("any", what, removes=removes)


def trajectory_cases(rng: Rng, n: int, malformed: bool = False) -> tuple[bytes, list[tuple[dict, Verdict, bytes]]]:
    """A trajectory JSONL file of ``n`` lines (``malformed``: until ``n`` of them are malformed);
    per line (the document it should load as, verdict)."""
    lines: list[bytes] = []
    cases: list[tuple[dict, Verdict, bytes]] = []
    loadable: list[dict] = []
    bad = 0
    while (bad if malformed else len(cases)) < n:
        doc = trajectory(rng, f"t{len(cases)}")
        original = copy.deepcopy(doc)
        data, verdict = mutate_trajectory(rng, doc, loadable)
        if verdict.kind == "keep":
            original = json.loads(data)
            if verdict.field != "dup-same":
                loadable.append(original)
        lines.append(data)
        cases.append((original, verdict, data))
        bad += verdict.kind != "keep"
    return b"\n".join(lines) + b"\n", cases


def check_trajectory_load(path: str, cases: list[tuple[dict, Verdict, bytes]], result: Any) -> Failures:
    """`load_path` on a `trajectory_cases` file against the verdicts."""
    f = Failures()
    by_line: dict[int, list[Any]] = defaultdict(list)
    for issue in result.issues:
        if "internal error" in issue.message:
            f.crashes.append(str(issue))
        if issue.file != path or issue.line is None or not 1 <= issue.line <= len(cases):
            f.wrong.append(f"issue without a place in the file: {issue}")
            continue
        by_line[issue.line].append(issue)
    loaded = Counter(t.id for t in result.trajectories)
    by_id = {t.id: t for t in result.trajectories}
    for t in result.trajectories:
        f.crashes += trajectory_invariants(t)
    errors = {ln for ln, iss in by_line.items() if any(i.severity == "error" for i in iss)}
    dups = {ln for ln, iss in by_line.items() if any(i.severity == "info" for i in iss)}
    records = sum(bool(data.strip()) for _, _, data in cases)  # a blank line holds no record
    if len(result.trajectories) + len(errors) + len(dups) != records:
        f.wrong.append(f"{len(result.trajectories)} loaded + {len(errors)} rejected + {len(dups)} repeats != "
                       f"{records} lines")
    for lineno, (doc, v, _) in enumerate(cases, start=1):
        issues = by_line.get(lineno, [])
        tid = doc.get("id") if isinstance(doc, dict) else None
        where = f"line {lineno} ({v.what})"
        if v.kind in ("keep", "warn") and v.field != "dup-same":
            if loaded.get(tid) != 1 or lineno in errors:
                f.lost.append(f"{where}: {tid!r} loaded {loaded.get(tid, 0)} times; issues {[str(i) for i in issues]}")
                continue
            if v.kind == "keep" and by_id[tid] != _expected_trajectory(doc):
                f.wrong.append(f"{where}: loaded differently from the line")
            if v.kind == "warn" and not any(i.severity == "warning" and (v.field is None or i.field == v.field)
                                            for i in issues):
                f.wrong.append(f"{where}: no warning for field {v.field}: {[str(i) for i in issues]}")
        elif v.field == "dup-same":
            if lineno not in dups:
                f.wrong.append(f"{where}: identical repeat without an info note: {[str(i) for i in issues]}")
        elif v.kind == "reject":
            if lineno not in errors:
                f.wrong.append(f"{where}: not reported as an error: {[str(i) for i in issues]}")
            elif v.field and not any((i.field or "").startswith(v.field) for i in issues if i.severity == "error"):
                f.wrong.append(f"{where}: error does not name field {v.field}: {[str(i) for i in issues]}")
    return f


def _expected_trajectory(doc: dict) -> Trajectory:
    from auditor.actions import with_actions

    return with_actions(Trajectory.model_validate(doc))


def trajectory_invariants(t: Trajectory) -> list[str]:
    """What every loaded trajectory must satisfy to be storable."""
    try:
        line = t.to_jsonl_line()
        line.encode("utf-8")
    except Exception as exc:  # noqa: BLE001
        return [f"trajectory {t.id!r} cannot be written: {type(exc).__name__}: {exc}"]
    doc = json.loads(line)
    out = []
    if too_deep(doc):
        out.append(f"trajectory {t.id!r} nests deeper than {MAX_NESTING}")
    for a in t.actions:
        if not (0 <= a.step <= INT32_MAX and 0 <= a.message_index <= INT32_MAX):
            out.append(f"trajectory {t.id!r} action {a.id} out of int32")
    if len({a.id for a in t.actions}) != len(t.actions):
        out.append(f"trajectory {t.id!r} repeats an action id")
    return out


# -- spans ---------------------------------------------------------------------------------------


def _id(rng: Rng, nbytes: int, salt: int) -> bytes:
    head = salt.to_bytes(4, "big")
    return head + bytes(rng.randint(0, 255) for _ in range(nbytes - 4))


def _attr(key: str, value: Any) -> dict:
    if isinstance(value, str):
        return {"key": key, "value": {"stringValue": value}}
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"doubleValue": value}}


def export(rng: Rng, index: int) -> dict:
    """One OTLP JSON export: one trace (id unique per ``index``), a chat span with GenAI content,
    sometimes a tool span and an agent span, hex ids."""
    trace = _id(rng, 16, index)
    t0 = 1_700_000_000_000_000_000 + index * 1_000_000
    spans = []
    names = [("chat", "chat smollm2")] + [rng.choice((("tool", "execute_tool send_email"), ("agent", "invoke_agent a")))
                                          for _ in range(rng.randint(0, 2))]
    for k, (role, name) in enumerate(names):
        attrs = [_attr("gen_ai.operation.name", {"chat": "chat", "tool": "execute_tool", "agent": "invoke_agent"}[role])]
        if role == "chat":
            inputs = [{"role": "user", "parts": [{"type": "text", "content": text(rng)}]}]
            outputs = [{"role": "assistant", "parts": [{"type": "text", "content": text(rng)}], "finish_reason": "stop"}]
            attrs += [_attr("gen_ai.input.messages", json.dumps(inputs, ensure_ascii=False)),
                      _attr("gen_ai.output.messages", json.dumps(outputs, ensure_ascii=False)),
                      _attr("gen_ai.request.model", "smollm2"), _attr("gen_ai.usage.input_tokens", rng.randint(1, 999)),
                      _attr("gen_ai.request.temperature", 0.5)]
        elif role == "tool":
            attrs += [_attr("gen_ai.tool.name", "send_email"), _attr("gen_ai.tool.call.id", f"call_{k}"),
                      {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": text(rng, 1)}, {"intValue": "3"}]}}}]
        span = {"traceId": trace.hex(), "spanId": _id(rng, 8, index * 8 + k).hex(), "name": name,
                "kind": rng.choice((1, 3, "SPAN_KIND_CLIENT")), "startTimeUnixNano": str(t0 + k * 1000),
                "endTimeUnixNano": str(t0 + k * 1000 + 500), "attributes": attrs,
                "events": [{"name": "e", "timeUnixNano": str(t0 + k), "attributes": [_attr("n", k)]}] if rng.random() < 0.3 else [],
                "status": {"code": rng.choice((0, 1, 2))}}
        spans.append(span)
    return {"resourceSpans": [{"resource": {"attributes": [_attr("service.name", text(rng, 1))]},
                               "scopeSpans": [{"scope": {"name": "fuzz"}, "spans": spans}]}]}


def export_spans(doc: dict) -> list[dict]:
    return [s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]


def _b64(hex_id: str, urlsafe: bool, pad: bool) -> str:
    raw = bytes.fromhex(hex_id)
    out = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return out if pad else out.rstrip("=")


#: base64 span ids that start with 0X / 0x (a hex prefix to a prefix-stripping parser)
ZEROX_IDS = ("0XSGQd8vX9w=", "0xSGQd8vX9w=", "0Xabcdefghi=", "0x0x0x0x0x8=")

SPAN_REJECTS: tuple[tuple[str, Any], ...] = (
    ("attributes", 1.5), ("events", 3), ("links", 7), ("startTimeUnixNano", math.nan),
    ("startTimeUnixNano", "123456789012345678901234567890"), ("endTimeUnixNano", "-5"),
    ("startTimeUnixNano", str(2**63)), ("startTimeUnixNano", 1e30), ("endTimeUnixNano", "12ab"),
    ("startTimeUnixNano", math.inf), ("spanId", "abc"), ("spanId", "0x12"), ("spanId", None), ("traceId", "zz" * 16),
    ("name", 5), ("kind", {"a": 1}), ("kind", 9), ("status", "ok"), ("events", [5]), ("links", [7]),
    ("attributes", [{"key": 5, "value": {}}]), ("attributes", [{"key": "a", "value": {"intValue": "1e5"}}]),
    ("attributes", [{"key": "a", "value": {"boolValue": "yes"}}]), ("attributes", [{"key": "a", "value": {"arrayValue": [1]}}]),
    ("attributes", [{"key": "a", "value": {"intValue": str(2**70)}}]),
    ("attributes", "deep"), ("events", [{"name": "e", "timeUnixNano": str(2**64 - 1)}]),
)


def mutate_export(rng: Rng, doc: dict) -> tuple[bytes, Verdict]:
    """One OTLP JSON export, mutated with a known verdict (spans counted for partial success)."""
    spans = export_spans(doc)
    kind = rng.choice(("keep", "keep", "warn", "reject", "reject", "reject", "resource", "line", "any", "any"))
    if kind == "keep":
        how = rng.choice(("base64", "zerox", "hex0x", "reorder"))
        i = rng.randint(0, len(spans) - 1)
        if how == "base64":
            urlsafe, pad = rng.random() < 0.5, rng.random() < 0.5
            for s in spans:
                s["spanId"], s["traceId"] = _b64(s["spanId"], urlsafe, pad), _b64(s["traceId"], urlsafe, pad)
        elif how == "zerox":
            spans[i]["spanId"] = ZEROX_IDS[rng.randint(0, len(ZEROX_IDS) - 1) % len(ZEROX_IDS)]
            while len({s["spanId"] for s in spans}) < len(spans):  # keep ids unique within the export
                spans[i]["spanId"] = _b64(_id(rng, 8, 99).hex(), False, True)
        elif how == "hex0x":
            spans[i]["spanId"] = rng.choice(("0x", "0X")) + spans[i]["spanId"].upper()
        else:
            spans[i] = dict(reversed(list(spans[i].items())))
            doc["resourceSpans"][0]["scopeSpans"][0]["spans"] = spans
        return dumps(doc), Verdict("keep", f"ids: {how}")
    if kind == "warn":
        i = rng.randint(0, len(spans) - 1)
        target = rng.choice(("name", "attr"))
        marker = MARK_SURROGATE if rng.random() < 0.6 else MARK_BAD_UTF8
        if target == "name":
            spans[i]["name"] += marker
            fld = "name"
        else:
            spans[i]["attributes"][0]["value"]["stringValue"] += marker
            fld = "attributes.0.value.stringValue"
        what = "lone surrogate" if marker == MARK_SURROGATE else "invalid UTF-8"
        return dumps(doc), Verdict("warn", f"{what} in {fld}", field=fld if marker == MARK_SURROGATE else None, span=i)
    if kind == "reject":
        i = rng.randint(0, len(spans) - 1)
        key, value = SPAN_REJECTS[rng.randint(0, len(SPAN_REJECTS) - 1)]
        if value == "deep":
            inner: Any = {"stringValue": "leaf"}
            for _ in range(MAX_NESTING):
                inner = {"arrayValue": {"values": [inner]}}
            value = [{"key": "deep", "value": inner}]
        spans[i][key] = copy.deepcopy(value)
        return dumps(doc), Verdict("reject", f"{key} = {str(value)[:40]}", field=key, span=i, spans_rejected=1)
    if kind == "resource":
        doc["resourceSpans"][0]["resource"] = rng.choice((5, "x", {"attributes": 7}, {"attributes": [{"key": 1}]}))
        return dumps(doc), Verdict("reject", "bad resource", field="resource", spans_rejected=len(spans))
    if kind == "line":
        data = dumps(doc)
        how = rng.choice(("truncate", "deep", "garbage", "not an export", "resourceSpans is a number"))
        if how == "truncate":
            data = data[: rng.randint(1, len(data) - 2)]
        elif how == "deep":
            data = b'{"resourceSpans": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        elif how == "garbage":
            data = b"\x00garbage{"
        elif how == "not an export":
            data = b'{"resourceLogs": []}'
        else:
            data = b'{"resourceSpans": 7}'
        return data, Verdict("reject", f"export: {how}", spans_rejected=len(spans))
    if rng.random() < 0.3:
        return flip_bytes(rng, dumps(doc)), Verdict("any", "bytes damaged", removes=True)
    doc, what, removes = random_leaf(rng, doc)
    return dumps(doc), Verdict("any", what, removes=removes)


def present_spans(data: bytes) -> int | None:
    """Span objects an export (as text) holds where a reader looks; None: not even JSON."""
    try:
        doc = json.loads(data.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None
    try:
        return sum(len(ss["spans"]) if isinstance(ss["spans"], list) else 1
                   for rs in doc["resourceSpans"] for ss in rs["scopeSpans"])
    except (KeyError, TypeError):
        return 0


def span_invariants(sp: SpanRecord) -> list[str]:
    """What every span handed to a writer must satisfy to be storable (file and DuckDB alike)."""
    out = []
    if len(sp.trace_id) != 32 or len(sp.span_id) != 16 or not (sp.trace_id + sp.span_id).isalnum():
        out.append(f"span {sp.span_id!r}: bad ids")
    for t in (sp.start_time_unix_nano, sp.end_time_unix_nano, *(e.get("time_unix_nano", 0) for e in sp.events)):
        if not isinstance(t, int) or not 0 <= t <= MAX_NANOS:
            out.append(f"span {sp.span_id}: time {t!r} out of range")
    try:
        doc = json.loads(sp.model_dump_json())
        sp.model_dump_json().encode("utf-8")
    except Exception as exc:  # noqa: BLE001
        return out + [f"span {sp.span_id}: cannot be written: {type(exc).__name__}: {exc}"]
    if too_deep(doc):
        out.append(f"span {sp.span_id}: nests deeper than {MAX_NESTING}")
    return out


def span_cases(rng: Rng, n: int, malformed: bool = False) -> tuple[bytes, list[tuple[dict, Verdict, bytes]]]:
    """An OTLP JSON span dump of ``n`` lines, one export each (``malformed``: until ``n`` of them
    are malformed); per line (original export, verdict, text)."""
    lines, cases = [], []
    bad = 0
    while (bad if malformed else len(cases)) < n:
        doc = export(rng, len(cases))
        original = copy.deepcopy(doc)
        data, verdict = mutate_export(rng, doc)
        lines.append(data)
        cases.append((original, verdict, data))
        bad += verdict.kind != "keep"
    return b"\n".join(lines) + b"\n", cases


def check_span_load(path: str, cases: list[tuple[dict, Verdict, bytes]], result: Any) -> Failures:
    """`load_path` on a `span_cases` file against the verdicts (spans and assembled trajectories)."""
    f = Failures()
    by_line: dict[int, list[Any]] = defaultdict(list)
    for issue in result.issues:
        if "internal error" in issue.message:
            f.crashes.append(str(issue))
        if issue.file != path or issue.line is None or not 1 <= issue.line <= len(cases):
            if not (issue.line is None and issue.span_id):  # assembly issues name a span; spans carry their line
                f.wrong.append(f"issue without a place in the file: {issue}")
            continue
        by_line[issue.line].append(issue)
    spans_by_line: dict[int, list[SpanRecord]] = defaultdict(list)
    for sp in result.spans:
        f.crashes += span_invariants(sp)
        spans_by_line[sp.where()[1] or 0].append(sp)
    for t in result.trajectories:
        f.crashes += trajectory_invariants(t)
    traj_ids = Counter(t.id for t in result.trajectories)
    for lineno, (doc, v, data) in enumerate(cases, start=1):
        issues = by_line.get(lineno, [])
        errors = [i for i in issues if i.severity == "error"]
        got = Counter(s.span_id for s in spans_by_line.get(lineno, []))
        originals = export_spans(doc)
        where = f"line {lineno} ({v.what})"
        if any(c > 1 for c in got.values()):
            f.wrong.append(f"{where}: a span loaded twice")
        if v.kind in ("keep", "warn"):
            if len(got) != len(originals) or errors:
                f.lost.append(f"{where}: {len(got)} of {len(originals)} spans loaded; {[str(i) for i in issues]}")
            elif v.kind == "keep" and v.what == "ids: reorder" and set(got) != {s["spanId"] for s in originals}:
                f.wrong.append(f"{where}: span ids changed")
            if v.kind == "keep" and traj_ids.get(originals[0]["traceId"], 0) != 1:
                f.lost.append(f"{where}: its trace was not assembled into one trajectory")
            if v.kind == "warn" and not any(i.severity == "warning" and (v.field is None or i.field == v.field)
                                            for i in issues):
                f.wrong.append(f"{where}: no warning naming {v.field}: {[str(i) for i in issues]}")
        elif v.kind == "reject":
            if len(got) != len(originals) - v.spans_rejected:
                f.wrong.append(f"{where}: {len(got)} of {len(originals)} spans loaded, expected "
                               f"{len(originals) - v.spans_rejected}; {[str(i) for i in issues]}")
            if not errors:
                f.wrong.append(f"{where}: not reported")
            elif v.span is not None and v.field not in ("spanId",):
                sid = originals[v.span]["spanId"]
                if not any(i.span_id == sid and (i.field or "").startswith(v.field or "") for i in errors):
                    f.wrong.append(f"{where}: no error naming span {sid} field {v.field}: {[str(i) for i in errors]}")
        else:
            present = present_spans(data) if data.strip() else 0  # a blank line holds no record
            if present is None or len(got) < present:
                if not errors and not (v.removes and present is not None):
                    f.wrong.append(f"{where}: {len(got)} of {present} spans loaded and nothing reported")
    return f


# -- OTLP requests (receivers) -------------------------------------------------------------------


def to_protobuf(doc: dict) -> Any:
    from auditor.collectors.otlp_json import spans_from_otlp_json
    from auditor.collectors.otlp_proto import to_otlp_proto

    return to_otlp_proto(spans_from_otlp_json(doc))


def mutate_protobuf(rng: Rng, doc: dict) -> tuple[bytes, Verdict]:
    """An ``ExportTraceServiceRequest`` (bytes) with a known verdict."""
    req = to_protobuf(doc)
    spans = [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    kind = rng.choice(("keep", "reject", "reject", "body", "any", "any", "any"))
    if kind == "keep":
        return req.SerializeToString(), Verdict("keep", "valid")
    if kind == "reject":
        i = rng.randint(0, len(spans) - 1)
        s = spans[i]
        how = rng.choice(("start", "end", "event", "trace_id", "span_id", "parent"))
        if how == "start":
            s.start_time_unix_nano = rng.choice((2**63, 2**64 - 1))
        elif how == "end":
            s.end_time_unix_nano = 2**64 - 1
        elif how == "event":
            s.events.add(name="e", time_unix_nano=2**63 + 1)
        elif how == "trace_id":
            s.trace_id = s.trace_id[:15]
        elif how == "span_id":
            s.span_id = s.span_id + b"\x01"
        else:
            s.parent_span_id = b"\x01\x02\x03"
        return req.SerializeToString(), Verdict("reject", f"span {how}", span=i, spans_rejected=1)
    if kind == "body":
        data = req.SerializeToString()
        how = rng.choice(("bad utf-8 in a name", "deep", "garbage"))
        if how == "bad utf-8 in a name":
            spans[0].name = "@@NAME@@"
            data = req.SerializeToString().replace(b"@@NAME@@", b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8")
        elif how == "deep":
            kv = spans[0].attributes.add(key="deep")
            value = kv.value
            for _ in range(120):
                value = value.array_value.values.add()
            value.string_value = "leaf"
            data = req.SerializeToString()
        else:
            data = b"\xff\xfe garbage"
        return data, Verdict("reject", f"body: {how}", spans_rejected=len(spans))
    return flip_bytes(rng, req.SerializeToString()), Verdict("any", "bytes damaged", removes=True)


def protobuf_present(data: bytes) -> int | None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    try:
        req = ExportTraceServiceRequest.FromString(data)
    except Exception:  # noqa: BLE001 - DecodeError, or upb's own limits
        return None
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


def check_answer(v: Verdict, status: int, rejected: int, message: str, gained: list[SpanRecord], present: int | None,
                 sent: int, label: str) -> Failures:
    """One request's answer against its verdict. ``status``: HTTP (gRPC mapped to 200/400/500);
    ``gained``: spans the sink received for it; ``present``: spans in the body (None: not parseable);
    ``sent``: spans of the original export."""
    f = Failures()
    for sp in gained:
        f.crashes += span_invariants(sp)
    if status >= 500:
        f.crashes.append(f"{label}: status {status} ({message[:200]})")
        return f
    if status not in (200, 400):
        f.wrong.append(f"{label}: status {status} ({message[:200]})")
        return f
    if v.kind in ("keep", "warn"):
        if status != 200 or len(gained) != sent or rejected:
            f.lost.append(f"{label}: status {status}, {len(gained)} of {sent} stored, {rejected} rejected ({message[:200]})")
        elif v.kind == "warn" and "surrogate" not in message:
            f.wrong.append(f"{label}: no warning in the answer")
    elif v.kind == "reject":
        expected = 400 if v.spans_rejected >= sent else 200
        if status != expected or (status == 200 and (rejected != v.spans_rejected or len(gained) != sent - rejected)):
            f.wrong.append(f"{label}: status {status} (expected {expected}), {rejected} rejected (expected "
                           f"{v.spans_rejected}), {len(gained)} stored ({message[:200]})")
    else:
        if status == 200 and present is not None and len(gained) + rejected != present:
            f.wrong.append(f"{label}: {len(gained)} stored + {rejected} rejected != {present} sent ({message[:200]})")
        if status == 200 and present is None:
            f.wrong.append(f"{label}: 200 for a body that is not an export")
        if status == 400 and gained:
            f.wrong.append(f"{label}: 400 but {len(gained)} spans stored")
    return f


def http_verdict_for_json(v: Verdict) -> Verdict:
    """A file reader replaces invalid UTF-8 (with a warning); over HTTP a JSON body must be UTF-8."""
    if v.kind == "warn" and v.what.startswith("invalid UTF-8"):
        return Verdict("reject", v.what, spans_rejected=10**6)
    return v
