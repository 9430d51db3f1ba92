"""Cut a trajectory into the leaf segments that attribution scores as units.

Every segment is a trimmed, non-empty character range of one message field, with a kind (which
decides whether it is input ``X``, intermediate ``R`` or output ``O`` for FlashTrace) and a label a
person reads in a table. Segments never overlap; ids are ``f"{traj.id}:s{n}"`` in message order
(within a message: reasoning, then content, then tool calls), then one per tool definition, so the
same trajectory always gets the same ids (and a message's segments keep the ids they had before
tool definitions were segments).

The rules, per message role:

``system``
    One ``system`` segment per paragraph (blank-line separated); short prompts are one segment.

``user``
    Split into units: each bullet or numbered item is a unit, every other line is split into
    sentences (``.``/``!``/``?`` followed by whitespace) and semicolon clauses. A unit is a
    ``user_constraint`` when it is restrictive or conditional (it says *not*, *never*, *only*,
    *must*, *without*, *avoid*, *except*, *unless*, *at most*, *under N*, *keep it …*, *make
    sure*, *ensure*, or it starts with *if* / *when* / *unless* / *in case*) **and** it is not
    the first unit of its message; every other unit is a ``user_request`` (so the first
    instruction of a message is always a request, even "Never mind the tests, fix the build").
    Files pasted into a user message the way Aider does it (a path line followed by a fenced
    block) are ``file_context`` segments with ``provenance.path`` set; Aider's boilerplate around
    them (a paragraph such as "I have *added these files to the chat* …") is ``file_context`` too,
    with no path, since it is not the user's instruction.

``tool``
    One ``tool_output`` segment per call; outputs longer than ``LONG_OUTPUT`` characters are cut
    per top-level JSON field / list item when the output is JSON, else per paragraph; a single
    paragraph longer than ``LONG_PARAGRAPH`` is cut into groups of lines. Long files in
    ``file_context`` are cut per paragraph the same way.

``assistant``
    ``reasoning`` → ``reasoning`` segments (per paragraph when long). Each action's own span (a
    tool call, an edit block, the final answer) → one ``action`` segment with ``action_id``. What
    is left of the content (text around edit blocks, earlier text-only turns) and tool calls that
    are not actions → ``prior_turn``.

``tools`` (``Trajectory.tools``, the definitions offered to the model)
    One ``tool_definition`` segment per tool, after every message's segments: its text is
    `tool_definition_text` (name, description and parameters as one JSON line), its provenance
    ``field = "tool_definition"`` with ``tool_name`` set and no ``message_index`` (no message holds
    it), its label ``tool def NAME: "description…"``. The renderer places it on the tokens that
    carry the definition however the template writes it (JSON with or without indentation), or
    leaves it unplaced when the template rewrites it. Tool definitions are input ``X``: a tool
    description can drive an action (tool poisoning).

A tool call's field text is ``ToolCall.arguments_json()``; its segment covers all of it (the
renderer extends the token span back to the tool's name as the template writes it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from auditor.trajectory import (Action, ActionKind, Message, Provenance, Segment, SegmentKind, Trajectory,
                                tool_definition_text)
from auditor.actions import with_actions

LONG_OUTPUT = 300  # characters: tool outputs and files longer than this are split
LONG_PARAGRAPH = 1500  # characters: a paragraph longer than this is split into line groups
LONG_REASONING = 600  # characters: reasoning / prior turns longer than this are split per paragraph
LABEL_SNIPPET = 48

_CONSTRAINT = re.compile(
    r"\b(?:do\s+not|don'?t|does\s+not|doesn'?t|never|not\s+to|only|must|mustn'?t|should\s+not|shouldn'?t|"
    r"cannot|can'?t|may\s+not|without|avoid|except|unless|at\s+most|at\s+least|no\s+more\s+than|"
    r"fewer\s+than|less\s+than|(?:under|below|within)\s+\d|keep\s+(?:it|them|this|the|your)|make\s+sure|"
    r"ensure|limit(?:ed)?\s+to|refrain|forbidden|prohibited|not\s+allowed)\b",
    re.I,
)
_CONDITIONAL_START = re.compile(r"^\W*(?:if|when|whenever|unless|in\s+case|only\s+if|as\s+long\s+as)\b", re.I)
_BULLET = re.compile(r"^[ \t]*(?:[-*•+]|\d{1,3}[.)])[ \t]+\S")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*[ \t]+(?=\S)|;[ \t]+(?=\S)")
_AIDER_FILE = re.compile(
    r"^(?P<path>[^\s`<>:]*[^\s`<>:.])[ \t]*\n(?P<fence>```+|~~~+)[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.M | re.S,
)
_AIDER_BOILERPLATE = re.compile(
    r"added these files to the chat|summaries of some files|READ ONLY files|read-only files|"
    r"I switched to a new code base|not sharing any files",
    re.I,
)
_BLANK = re.compile(r"\n[ \t]*\n+")


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _split_trimmed(text: str, separator: "re.Pattern[str]", start: int, end: int) -> Iterator[tuple[int, int]]:
    """Trimmed non-empty ranges of ``text[start:end]`` between matches of ``separator``."""
    pos = start
    for m in separator.finditer(text, start, end):
        s, e = _trim(text, pos, m.start())
        if e > s:
            yield s, e
        pos = m.end()
    s, e = _trim(text, pos, end)
    if e > s:
        yield s, e


def _paragraphs(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Trimmed non-empty paragraph ranges (blank-line separated) of ``text[start:end]``."""
    yield from _split_trimmed(text, _BLANK, start, end)


def _line_groups(text: str, start: int, end: int, limit: int) -> Iterator[tuple[int, int]]:
    """Consecutive lines grouped so that each group stays under ``limit`` characters."""
    group_start = start
    pos = start
    while pos < end:
        nl = text.find("\n", pos, end)
        line_end = end if nl == -1 else nl + 1
        if line_end - group_start > limit and pos > group_start:
            s, e = _trim(text, group_start, pos)
            if e > s:
                yield s, e
            group_start = pos
        pos = line_end
    s, e = _trim(text, group_start, end)
    if e > s:
        yield s, e


def _json_parts(text: str) -> list[tuple[int, int, str]] | None:
    """Top-level fields of a JSON object (``.key``) or items of a list (``[i]``) with ranges."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        json.loads(stripped)
    except (json.JSONDecodeError, ValueError):
        return None
    dec = json.JSONDecoder()
    ws = re.compile(r"[ \t\n\r]*")
    pos = ws.match(text, 0).end()
    opener = text[pos]
    pos = ws.match(text, pos + 1).end()
    parts: list[tuple[int, int, str]] = []
    index = 0
    while pos < len(text) and text[pos] not in "}]":
        start = pos
        if opener == "{":
            key, pos = dec.raw_decode(text, pos)
            pos = ws.match(text, pos).end() + 1  # ':'
            pos = ws.match(text, pos).end()
            name = f".{key}"
        else:
            name = f"[{index}]"
        _, pos = dec.raw_decode(text, pos)
        parts.append((start, pos, name))
        index += 1
        pos = ws.match(text, pos).end()
        if pos < len(text) and text[pos] == ",":
            pos = ws.match(text, pos + 1).end()
    return parts if len(parts) > 1 else None


def _split_long(text: str, start: int, end: int) -> list[tuple[int, int, str]]:
    """Ranges with a suffix for the label (``¶2``, ``.field``); one range when short."""
    s, e = _trim(text, start, end)
    if e <= s:
        return []
    if e - s <= LONG_OUTPUT:
        return [(s, e, "")]
    if start == 0 and end == len(text):
        parts = _json_parts(text)
        if parts:
            return [(a, b, " " + name) for a, b, name in parts]
    out: list[tuple[int, int]] = []
    for ps, pe in _paragraphs(text, s, e):
        if pe - ps > LONG_PARAGRAPH:
            out.extend(_line_groups(text, ps, pe, LONG_PARAGRAPH // 2))
        else:
            out.append((ps, pe))
    if len(out) == 1:
        return [(out[0][0], out[0][1], "")]
    return [(a, b, f" ¶{n}") for n, (a, b) in enumerate(out, 1)]


def _user_units(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Bullet items, then sentences and semicolon clauses of every other line."""
    pos = start
    lines: list[tuple[int, int]] = []
    while pos < end:
        nl = text.find("\n", pos, end)
        line_end = end if nl == -1 else nl
        lines.append((pos, line_end))
        pos = line_end + 1
    # join wrapped bullet continuation lines (indented, non-bullet) to their item
    merged: list[tuple[int, int, bool]] = []
    for ls, le in lines:
        line = text[ls:le]
        if not line.strip():
            merged.append((ls, le, False))
            continue
        is_bullet = bool(_BULLET.match(line))
        if merged and merged[-1][2] and not is_bullet and line[:1] in " \t":
            merged[-1] = (merged[-1][0], le, True)
        else:
            merged.append((ls, le, is_bullet))
    for ls, le, is_bullet in merged:
        if is_bullet:
            s, e = _trim(text, ls, le)
            if e > s:
                yield s, e
            continue
        yield from _split_trimmed(text, _SENTENCE_END, ls, le)


def is_constraint(unit: str) -> bool:
    """Whether a user unit reads as restrictive or conditional (see the module docstring)."""
    return bool(_CONSTRAINT.search(unit) or _CONDITIONAL_START.match(unit))


def _snippet(text: str, n: int = LABEL_SNIPPET) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= n else flat[: n - 1].rstrip() + "…"


class _Builder:
    def __init__(self, traj: Trajectory) -> None:
        self.traj = traj
        self.segments: list[Segment] = []

    def add(self, kind: SegmentKind, text: str, start: int, end: int, label: str, *, message_index: int | None,
            field: str = "content", tool_call_id: str | None = None, tool_name: str | None = None,
            path: str | None = None, action_id: str | None = None) -> None:
        self.segments.append(
            Segment(
                id=f"{self.traj.id}:s{len(self.segments)}",
                kind=kind,
                text=text[start:end],
                label=label,
                action_id=action_id,
                provenance=Provenance(
                    message_index=message_index, field=field, tool_call_id=tool_call_id,  # type: ignore[arg-type]
                    tool_name=tool_name, path=path, char_start=start, char_end=end,
                ),
            )
        )


def _action_label(action: Action) -> str:
    step = f"a{action.step}"
    if action.kind == ActionKind.tool_call:
        return f"action {step} {action.tool_name}#{action.tool_call_id}"
    if action.kind == ActionKind.code_edit and action.edit:
        return f"action {step} edit {action.edit.path}"
    return f"action {step} final answer"


def _user(b: _Builder, i: int, msg: Message) -> None:
    text = msg.content
    files = list(_AIDER_FILE.finditer(text))
    covered: list[tuple[int, int]] = []
    pieces: list[tuple[int, int, str, str | None]] = []  # (start, end, what, path)
    for m in files:
        pieces.append((m.start(), m.end(), "file", m.group("path")))
        covered.append((m.start(), m.end()))
    # the text between files
    pos = 0
    gaps: list[tuple[int, int]] = []
    for s, e in covered:
        gaps.append((pos, s))
        pos = e
    gaps.append((pos, len(text)))
    for s, e in gaps:
        pieces.append((s, e, "text", None))
    pieces.sort()
    first_unit = True
    for s, e, what, path in pieces:
        if what == "file":
            for a, z, suffix in _split_long(text, s, e):
                b.add(SegmentKind.file_context, text, a, z, f"file {path}{suffix}", message_index=i, path=path)
            continue
        units: list[tuple[int, int]] = []
        for a, z in _paragraphs(text, s, e):
            if files and _AIDER_BOILERPLATE.search(text, a, z):
                b.add(SegmentKind.file_context, text, a, z, f'files note: "{_snippet(text[a:z], 36)}"',
                      message_index=i)
            else:
                units.extend(_user_units(text, a, z))
        for a, z in units:
            unit = text[a:z]
            kind = SegmentKind.user_constraint if (not first_unit and is_constraint(unit)) else SegmentKind.user_request
            first_unit = False
            b.add(kind, text, a, z, f'user: "{_snippet(unit)}"', message_index=i)


def _assistant(b: _Builder, i: int, msg: Message, actions: list[Action]) -> None:
    turn = f"turn {i}"
    if msg.reasoning and msg.reasoning.strip():
        ranges = list(_paragraphs(msg.reasoning, 0, len(msg.reasoning)))
        if len(msg.reasoning) <= LONG_REASONING:
            ranges = [_trim(msg.reasoning, 0, len(msg.reasoning))]
        for n, (a, z) in enumerate(ranges, 1):
            suffix = f" ¶{n}" if len(ranges) > 1 else ""
            b.add(SegmentKind.reasoning, msg.reasoning, a, z,
                  f'reasoning ({turn}){suffix}: "{_snippet(msg.reasoning[a:z], 36)}"', message_index=i,
                  field="reasoning")
    text = msg.content
    spans = sorted(
        (a for a in actions if a.message_index == i and a.char_start is not None and a.char_end is not None),
        key=lambda a: a.char_start or 0,
    )
    pos = 0

    def prior(s: int, e: int) -> None:
        s, e = _trim(text, s, e)
        if e <= s:
            return
        ranges = [(s, e)] if e - s <= LONG_REASONING else list(_paragraphs(text, s, e))
        for a, z in ranges:
            b.add(SegmentKind.prior_turn, text, a, z, f'assistant ({turn}): "{_snippet(text[a:z], 36)}"',
                  message_index=i)

    for action in spans:
        cs, ce = action.char_start or 0, min(action.char_end or 0, len(text))
        if cs < pos:  # overlapping action ranges: keep the first, never double-count text
            continue
        prior(pos, cs)
        a, z = _trim(text, cs, ce)
        if z > a:
            b.add(SegmentKind.action, text, a, z, _action_label(action), message_index=i, action_id=action.id)
        pos = ce
    prior(pos, len(text))
    by_call = {a.tool_call_id: a for a in actions if a.message_index == i and a.tool_call_id}
    for call in msg.tool_calls:
        args = call.arguments_json()
        action = by_call.get(call.id)
        if action is not None and action.kind == ActionKind.tool_call:
            b.add(SegmentKind.action, args, 0, len(args), _action_label(action), message_index=i,
                  field="tool_call", tool_call_id=call.id, tool_name=call.name, action_id=action.id)
        else:
            b.add(SegmentKind.prior_turn, args, 0, len(args), f"call {call.name}#{call.id} ({turn})",
                  message_index=i, field="tool_call", tool_call_id=call.id, tool_name=call.name)


def segment_trajectory(traj: Trajectory) -> list[Segment]:
    """The trajectory's leaf segments in order (see the module docstring for the rules).

    Actions come from ``traj.actions``, derived from the messages when the trajectory has none.
    """
    actions = with_actions(traj).actions
    b = _Builder(traj)
    for i, msg in enumerate(traj.messages):
        if msg.role == "system":
            for n, (a, z) in enumerate(ranges := list(_paragraphs(msg.content, 0, len(msg.content))), 1):
                suffix = f" ¶{n}" if len(ranges) > 1 else ""
                b.add(SegmentKind.system, msg.content, a, z, f'system{suffix}: "{_snippet(msg.content[a:z], 40)}"',
                      message_index=i)
        elif msg.role == "user":
            _user(b, i, msg)
        elif msg.role == "tool":
            name = msg.name or "tool"
            for a, z, suffix in _split_long(msg.content, 0, len(msg.content)):
                b.add(SegmentKind.tool_output, msg.content, a, z,
                      f'tool {name}#{msg.tool_call_id}{suffix}: "{_snippet(msg.content[a:z], 36)}"',
                      message_index=i, tool_call_id=msg.tool_call_id, tool_name=name)
        else:
            _assistant(b, i, msg, actions)
    for tool in traj.tools:
        text = tool_definition_text(tool)
        about = f': "{_snippet(tool.description, 36)}"' if tool.description.strip() else ""
        b.add(SegmentKind.tool_definition, text, 0, len(text), f"tool def {tool.name}{about}", message_index=None,
              field="tool_definition", tool_name=tool.name)
    return b.segments


__all__ = ["segment_trajectory", "is_constraint", "LONG_OUTPUT", "LONG_PARAGRAPH"]
