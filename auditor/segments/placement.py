"""Placement: find each segment's text, and each tool definition, in a rendered chat template,
and turn those character ranges into exact token ranges.

Messages are located in order with a moving cursor. For each message field the whole (trimmed)
field text is searched first, as written and then JSON-escaped (Llama 3.1 ``tojson``-encodes tool
results); a hit maps every segment of the field by offset. Failing that, each segment is searched
on its own, then with any whitespace run allowed to match any other. A tool call is placed from
its name to the end of its arguments as the template wrote them (``json.dumps`` with and without
``ensure_ascii``, or compact). A tool definition is placed on its JSON as the template wrote it
(the OpenAI dict or its ``function`` part, any indentation, with or without ``ensure_ascii``, keys
in order or sorted: Hermes/Qwen ``tool | tojson``, Llama 3.1 ``tojson(indent=4)``, the renderer's
own ``<tools>`` block), wherever the template put it (the system prompt, the first user message);
a template that writes it some other way leaves it unplaced, with the reason. `_place_tools` and
the per-field loop of `_place_chars` look alike on purpose: one places the definitions the
template wrote once, wherever it chose, the other walks the kept messages in order.

A segment's tokens are those from the token holding its first character to the token holding its
last; a token shared by two segments goes to the earlier one. Whatever cannot be placed is listed
with the reason; nothing is guessed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from auditor.trajectory import Segment, ToolDefinition, Trajectory, tool_definition_text


def _escaped(text: str, ensure_ascii: bool) -> tuple[str, list[int]]:
    """``json.dumps(text)[1:-1]`` and the escaped position of every original character (+ end)."""
    out: list[str] = []
    pos: list[int] = []
    n = 0
    for ch in text:
        pos.append(n)
        e = json.dumps(ch, ensure_ascii=ensure_ascii)[1:-1]
        out.append(e)
        n += len(e)
    pos.append(n)
    return "".join(out), pos


def _flex_pattern(text: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in text.split()]
    return re.compile(r"\s+".join(parts))


class _Locator:
    def __init__(self, rendered: str) -> None:
        self.s = rendered

    def field(self, text: str, start: int, cursor: int) -> tuple[Any, int] | None:
        """Map a field whose trimmed text starts at ``start`` in the field: (map, end) or None.

        ``map(a, b)`` turns a field char range into a rendered char range."""
        if not text:
            return None
        idx = self.s.find(text, cursor)
        if idx != -1:
            base = idx - start
            return (lambda a, b, base=base: (a + base, b + base)), idx + len(text)
        for ascii_ in (False, True):
            esc, pos = _escaped(text, ascii_)
            if esc == text:
                continue
            idx = self.s.find(esc, cursor)
            if idx != -1:
                return (lambda a, b, idx=idx, pos=pos: (idx + pos[a - start], idx + pos[b - start])), idx + len(esc)
        return None

    def piece(self, text: str, cursor: int) -> tuple[int, int] | None:
        idx = self.s.find(text, cursor)
        if idx != -1:
            return idx, idx + len(text)
        for ascii_ in (False, True):
            esc, _ = _escaped(text, ascii_)
            if esc != text and (idx := self.s.find(esc, cursor)) != -1:
                return idx, idx + len(esc)
        if text.split():
            m = _flex_pattern(text).search(self.s, cursor)
            if m:
                return m.start(), m.end()
        return None

    def call(self, name: str, arguments: dict, cursor: int) -> tuple[int, int] | None:
        variants = [
            json.dumps(arguments, ensure_ascii=False),
            json.dumps(arguments),
            json.dumps(arguments, ensure_ascii=False, separators=(",", ":")),
            json.dumps(arguments, ensure_ascii=False, indent=2),
            json.dumps(arguments, ensure_ascii=False, sort_keys=True),
        ]
        pos = cursor
        while True:
            n = self.s.find(name, pos)
            if n == -1:
                return None
            best: tuple[int, int] | None = None
            for v in variants:
                a = self.s.find(v, n + len(name))
                if a != -1 and a - (n + len(name)) <= 64 and (best is None or a < best[0]):
                    best = (a, a + len(v))
            if best is None and not arguments:
                return n, n + len(name)
            if best is not None:
                return n, best[1]
            pos = n + len(name)


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[,:{}\[\]]|[^",:{}\[\]]+')


def _json_pattern(obj: Any, ensure_ascii: bool, sort_keys: bool) -> re.Pattern[str]:
    """``obj`` as JSON with any whitespace (or none) between its tokens: every indentation and
    separator spacing ``tojson`` can write, never a change inside a string."""
    compact = json.dumps(obj, ensure_ascii=ensure_ascii, sort_keys=sort_keys, separators=(",", ":"))
    return re.compile(r"\s*".join(re.escape(t) for t in _JSON_TOKEN.findall(compact)))


def tool_definition_patterns(tool: ToolDefinition) -> list[list[re.Pattern[str]]]:
    """How a template may write ``tool``: the OpenAI dict (``{"type": "function", "function": …}``),
    else its ``function`` part alone, each as JSON in any indentation, with or without
    ``ensure_ascii``, keys in order or sorted. Two groups, the whole dict first."""
    groups = []
    for obj in (tool.as_openai(), tool.as_openai()["function"]):
        pats: dict[str, re.Pattern[str]] = {}
        for ensure_ascii in (False, True):
            for sort_keys in (False, True):
                p = _json_pattern(obj, ensure_ascii, sort_keys)
                pats.setdefault(p.pattern, p)
        groups.append(list(pats.values()))
    return groups


def _find_tool(rendered: str, tool: ToolDefinition, cursor: int) -> tuple[int, int] | None:
    """The rendered char range of ``tool``'s definition at or after ``cursor`` (earliest hit of
    the first pattern group that has one), or None."""
    for group in tool_definition_patterns(tool):
        hits = [m for p in group if (m := p.search(rendered, cursor))]
        if hits:
            best = min(hits, key=lambda m: (m.start(), -m.end()))
            return best.start(), best.end()
    return None


def _place_tools(traj: Trajectory, segments: list[Segment], rendered: str, where: dict[str, tuple[int, int]],
                 why: dict[str, str]) -> None:
    """Place ``tool_definition`` segments, in order, on the definitions the rendered text carries."""
    cursor = 0
    for s in segments:
        name = s.provenance.tool_name or ""
        tool = traj.tool(name)
        hit = None if tool is None else (_find_tool(rendered, tool, cursor) or _find_tool(rendered, tool, 0))
        if hit is None:
            why[s.id] = (f"tool definition {name} not found in the rendered text "
                         "(the template left it out or rewrote it beyond its JSON)")
            continue
        where[s.id] = hit
        cursor = hit[1]


def _field_text(traj: Trajectory, seg: Segment) -> str:
    if seg.provenance.field == "tool_definition":
        tool = traj.tool(seg.provenance.tool_name or "")
        return tool_definition_text(tool) if tool is not None else ""
    m = traj.messages[seg.provenance.message_index]
    if seg.provenance.field == "reasoning":
        return m.reasoning or ""
    if seg.provenance.field == "tool_call":
        call = next(c for c in m.tool_calls if c.id == seg.provenance.tool_call_id)
        return call.arguments_json()
    return m.content


def _place_chars(traj: Trajectory, kept: list[int], segments: list[Segment], rendered: str) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """Rendered char range of every segment that can be found; reasons for the others."""
    loc = _Locator(rendered)
    where: dict[str, tuple[int, int]] = {}
    why: dict[str, str] = {}
    by_msg: dict[int, list[Segment]] = {}
    tools: list[Segment] = []
    for s in segments:
        if s.provenance.message_index is None:
            tools.append(s)
        else:
            by_msg.setdefault(s.provenance.message_index, []).append(s)
    _place_tools(traj, tools, rendered, where, why)
    cursor = 0
    for i in kept:
        segs = by_msg.get(i, [])
        msg_start = cursor
        msg_end = cursor
        field_cursor = cursor
        groups: list[tuple[str, str | None, list[Segment]]] = []
        for s in segs:
            key = (s.provenance.field, s.provenance.tool_call_id)
            if groups and (groups[-1][0], groups[-1][1]) == key:
                groups[-1][2].append(s)
            else:
                groups.append((s.provenance.field, s.provenance.tool_call_id, [s]))
        for fname, call_id, group in groups:
            if fname == "tool_call":
                call = next(c for c in traj.messages[i].tool_calls if c.id == call_id)
                hit = loc.call(call.name, call.arguments, field_cursor) or loc.call(call.name, call.arguments, msg_start)
                if hit is None:
                    for s in group:
                        why[s.id] = f"tool call {call.name}#{call.id} not found in the rendered text"
                    continue
                for s in group:
                    where[s.id] = hit
                field_cursor = hit[1]
                msg_end = max(msg_end, hit[1])
                continue
            text = _field_text(traj, group[0])
            a0 = min(s.provenance.char_start for s in group)
            b0 = max(s.provenance.char_end for s in group)
            core = text[a0:b0]
            mapped = loc.field(core, a0, field_cursor) or loc.field(core, a0, msg_start)
            if mapped is not None:
                fmap, end = mapped
                for s in group:
                    where[s.id] = fmap(s.provenance.char_start, s.provenance.char_end)
                field_cursor = end
                msg_end = max(msg_end, end)
                continue
            pc = field_cursor
            for s in group:
                hit = loc.piece(s.text, pc)
                if hit is None:
                    why[s.id] = (f"{s.provenance.field} text of message {i} not found in the rendered text "
                                 "(the template dropped or rewrote it)")
                    continue
                where[s.id] = hit
                pc = hit[1]
            if pc > field_cursor:
                field_cursor = pc
                msg_end = max(msg_end, pc)
        cursor = max(cursor, msg_end)
    return where, why


def _token_ranges(offsets: list[tuple[int, int]], n_chars: int) -> tuple[list[int], list[int]]:
    first = [-1] * n_chars
    last = [-1] * n_chars
    for t, (a, b) in enumerate(offsets):
        for c in range(a, min(b, n_chars)):
            if first[c] == -1:
                first[c] = t
            last[c] = t
    return first, last


def place_segments(traj: Trajectory, kept: list[int], segments: list[Segment], text: str,
                   offsets: list[tuple[int, int]]) -> tuple[list[Segment], list[str]]:
    """Copies of the ``segments`` found in ``text`` with ``token_start``/``token_end`` set
    (in token order), and why each other one is unplaced. ``kept``: the rendered message indices,
    in order; ``offsets``: each token's character range in ``text``."""
    where, why = _place_chars(traj, kept, segments, text)
    first, last = _token_ranges(offsets, len(text))
    placed: list[Segment] = []
    unplaced: list[str] = []

    def tok_at(c: int, table: list[int], step: int) -> int:
        while 0 <= c < len(table) and table[c] == -1:
            c += step
        return table[c] if 0 <= c < len(table) else -1

    spans: list[tuple[int, int, Segment]] = []
    for s in segments:
        if s.id not in where:
            unplaced.append(f"{s.id} [{s.label}]: {why.get(s.id, 'not found')}")
            continue
        a, b = where[s.id]
        # trimmed rendered range: whitespace never decides a token
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        ts, te = tok_at(a, first, +1), tok_at(b - 1, last, -1)
        if ts == -1 or te == -1 or te < ts:
            unplaced.append(f"{s.id} [{s.label}]: its text has no tokens")
            continue
        spans.append((ts, te + 1, s))
    spans.sort(key=lambda x: (x[0], x[1]))
    end = 0
    for ts, te, s in spans:
        if ts < end:
            ts = end
        if te <= ts:
            unplaced.append(f"{s.id} [{s.label}]: its only tokens are shared with the segment before it")
            continue
        placed.append(s.model_copy(update={"token_start": ts, "token_end": te}))
        end = te
    return placed, unplaced


__all__ = ["place_segments", "tool_definition_patterns"]
