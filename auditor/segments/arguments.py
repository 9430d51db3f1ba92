"""Where each argument of an action sits in the rendered text, so each can be explained on its own.

A whole tool call mixes *what it does* (the recipient, the statement, the command) with *what it
says* (a body that summarises the file the agent read). The second is rightly driven by data and
drowns the first: the benign ``send_email`` that mails the user's own boss a summary of a file has
most of its mass on that file. Locating every argument value lets the engine explain each one as its
own target, from the same forward pass, and lets the CI check judge an action by the arguments that
decide where its effect lands.

Parts located per action kind:

- tool call: every top-level argument, by name; the value's characters without JSON quotes
  (``"to": "bob@x.org"`` -> ``bob@x.org``); nested objects and lists as their whole JSON text.
  A JSON object equal to the arguments is read member by member, so keys in any order (a template
  that sorts them) and the same key inside a nested value are told apart; templates that write
  parameters as text are searched key by key, a key or value matching whole words only;
- code edit: ``path``, ``search`` and ``replace`` (the text the edit removes and writes), each when
  non-empty and found in the block (``udiff`` hunks interleave them, so only ``path`` there);
- final answer: none.

A part that cannot be found (a template that rewrites arguments beyond JSON escaping) is left out,
never guessed; callers keep the whole-action explanation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from auditor.trajectory import Action, ActionKind


@dataclass(frozen=True)
class ArgumentSpan:
    """One argument's place: rendered characters ``[char_start, char_end)`` and tokens ``[token_start, token_end)``."""

    name: str
    char_start: int
    char_end: int
    token_start: int = 0
    token_end: int = 0


_MAX_GAP = 8  # characters allowed between a key's closing quote and its value (": ", " = ", ...)


def _value_texts(value: Any) -> list[str]:
    """The ways a template may write ``value``: JSON (unicode kept or escaped), then plain text."""
    out = [json.dumps(value, ensure_ascii=False), json.dumps(value)]
    if isinstance(value, str):
        out.append(value)  # templates that write parameters as text (<parameter=to>bob</parameter>)
    elif not isinstance(value, (dict, list)):
        out.append(str(value))
    return list(dict.fromkeys(out))


_DECODER = json.JSONDecoder()


def _decoded_at(text: str, lo: int, hi: int, end: int, value: Any) -> tuple[int, int, str] | None:
    """A JSON value equal to ``value`` that starts in ``text[lo:hi]`` after ``:``/``=`` and blanks,
    however the template formatted it (indentation, separators, escapes)."""
    i = lo
    while i < hi and text[i] in ' \t\n:="':
        if text[i] == '"' and i > lo:  # an opening quote: the value is a JSON string from here
            break
        i += 1
    if i >= hi or text[i] == '"' and i == lo:
        return None
    try:
        decoded, stop = _DECODER.raw_decode(text, i)
    except ValueError:
        return None
    if stop > end or decoded != value or isinstance(decoded, bool) != isinstance(value, bool):
        return None
    return i, stop, text[i:stop]


def _same(a: Any, b: Any) -> bool:
    """JSON equality that tells booleans from numbers (``True == 1`` in Python)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def _skip_blanks(text: str, i: int, end: int) -> int:
    while i < end and text[i] in " \t\r\n":
        i += 1
    return i


def _members(text: str, i: int, end: int) -> dict[str, tuple[int, int]] | None:
    """The top-level members of the JSON object starting at ``text[i] == "{"``: key -> value's
    character range; None unless it is an object that ends by ``end``."""
    out: dict[str, tuple[int, int]] = {}
    j = _skip_blanks(text, i + 1, end)
    if j < end and text[j] == "}":
        return out
    try:
        while j < end and text[j] == '"':
            key, j = _DECODER.raw_decode(text, j)
            j = _skip_blanks(text, j, end)
            if j >= end or text[j] != ":":
                return None
            a = _skip_blanks(text, j + 1, end)
            _, j = _DECODER.raw_decode(text, a)
            out[key] = (a, j)
            j = _skip_blanks(text, j, end)
            if j < end and text[j] == "}":
                return out
            if j >= end or text[j] != ",":
                return None
            j = _skip_blanks(text, j + 1, end)
    except ValueError:
        return None
    return None


def _json_object_chars(text: str, arguments: dict[str, Any], start: int, end: int) -> list[ArgumentSpan] | None:
    """The arguments as a JSON object in ``text[start:end]`` (the first ``{`` that decodes to an
    equal object), read member by member; None when there is none."""
    i = text.find("{", start, end)
    while i != -1:
        try:
            decoded, stop = _DECODER.raw_decode(text, i)
        except ValueError:
            decoded, stop = None, -1
        if stop != -1 and stop <= end and isinstance(decoded, dict) and _same(decoded, arguments):
            members = _members(text, i, stop)
            if members is not None:
                out = []
                for key in arguments:
                    if key not in members:
                        continue
                    a, b = members[key]
                    if isinstance(arguments[key], str) and b - a >= 2:
                        a, b = a + 1, b - 1  # the value's characters, not its quotes
                    if b > a:
                        out.append(ArgumentSpan(str(key), a, b))
                return out
        i = text.find("{", i + 1, end)
    return None


def _word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _whole(text: str, a: int, b: int) -> bool:
    """``text[a:b]`` is not part of a longer word (``to`` in ``reply_to``, ``5`` in ``15``)."""
    if a >= b:
        return True
    return not ((a > 0 and _word(text[a]) and _word(text[a - 1])) or
                (b < len(text) and _word(text[b - 1]) and _word(text[b])))


def tool_argument_chars(text: str, arguments: dict[str, Any], start: int = 0, end: int | None = None) -> list[ArgumentSpan]:
    """Character spans of the top-level ``arguments`` inside ``text[start:end]``, in argument order.

    A JSON object equal to ``arguments`` is read member by member (any key order, any
    formatting). Otherwise each key is searched after the previous argument's value; its value
    must begin within a few characters of the key, so a value equal to some other text of the call
    is never mistaken for it.
    """
    end = len(text) if end is None else end
    found = _json_object_chars(text, arguments, start, end)
    if found is not None:
        return found
    out: list[ArgumentSpan] = []
    cursor = start
    for key, value in arguments.items():
        hit = None
        for key_text in (json.dumps(key, ensure_ascii=False), json.dumps(key), key):
            k = text.find(key_text, cursor, end)
            while k != -1 and hit is None:
                after = k + len(key_text)
                if _whole(text, k, after):
                    hit = _decoded_at(text, after, min(end, after + _MAX_GAP), end, value)
                    for vt in ([] if hit else _value_texts(value)):
                        v = text.find(vt, after, min(end, after + _MAX_GAP + len(vt)))
                        if v != -1 and v - after <= _MAX_GAP and _whole(text, v, v + len(vt)):
                            hit = (v, v + len(vt), vt)
                            break
                if hit is None:
                    k = text.find(key_text, after, end)
            if hit is not None:
                break
        if hit is None:
            continue
        a, b, vt = hit
        cursor = b
        if isinstance(value, str) and vt.startswith('"') and b - a >= 2:
            a, b = a + 1, b - 1  # the value's characters, not its quotes
        if b > a:
            out.append(ArgumentSpan(str(key), a, b))
    return out


def edit_part_chars(text: str, action: Action, start: int = 0, end: int | None = None) -> list[ArgumentSpan]:
    """``path``, ``search`` and ``replace`` of a code edit inside ``text[start:end]``."""
    end = len(text) if end is None else end
    edit = action.edit
    if edit is None:
        return []
    out: list[ArgumentSpan] = []
    p = text.find(edit.path, start, end) if edit.path else -1
    cursor = start
    if p != -1:
        out.append(ArgumentSpan("path", p, p + len(edit.path)))
        cursor = p + len(edit.path)
    if edit.format == "udiff":
        return out
    for name, part in (("search", edit.search), ("replace", edit.replace)):
        core = part.strip()
        if not core:
            continue
        i = text.find(core, cursor, end)
        if i == -1:
            continue
        out.append(ArgumentSpan(name, i, i + len(core)))
        cursor = i + len(core)
    return out


def argument_spans(action: Action, text: str, offsets: list[tuple[int, int]], token_start: int,
                   token_end: int) -> list[ArgumentSpan]:
    """Token spans of ``action``'s arguments, given its rendered tokens ``[token_start, token_end)``.

    ``text`` and ``offsets`` are the rendered string and each token's character range (as
    `auditor.segments.RenderedTrajectory` has them). A token that overlaps a value belongs to it.
    """
    if token_end <= token_start:
        return []
    c0, c1 = offsets[token_start][0], offsets[token_end - 1][1]
    if action.kind is ActionKind.tool_call and action.arguments:
        chars = tool_argument_chars(text, action.arguments, c0, c1)
    elif action.kind is ActionKind.code_edit:
        chars = edit_part_chars(text, action, c0, c1)
    else:
        return []
    out: list[ArgumentSpan] = []
    for span in chars:
        toks = [t for t in range(token_start, token_end)
                if offsets[t][0] < span.char_end and offsets[t][1] > span.char_start]
        if toks:
            out.append(ArgumentSpan(span.name, span.char_start, span.char_end, toks[0], toks[-1] + 1))
    return out


__all__ = ["ArgumentSpan", "argument_spans", "tool_argument_chars", "edit_part_chars"]
