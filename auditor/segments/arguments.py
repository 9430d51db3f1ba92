"""Where each argument of an action sits in the rendered text, so each can be explained on its own.

A whole tool call mixes *what it does* (the recipient, the statement, the command) with *what it
says* (a body that summarises the file the agent read). The second is rightly driven by data and
drowns the first: the benign ``send_email`` that mails the user's own boss a summary of a file has
most of its mass on that file. Locating every argument value lets the engine explain each one as its
own target, from the same forward pass, and lets the CI check judge an action by the arguments that
decide where its effect lands.

Parts located per action kind:

- tool call: every top-level argument, by name; the value's characters without JSON quotes
  (``"to": "bob@x.org"`` -> ``bob@x.org``); nested objects and lists as their whole JSON text;
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


def tool_argument_chars(text: str, arguments: dict[str, Any], start: int = 0, end: int | None = None) -> list[ArgumentSpan]:
    """Character spans of the top-level ``arguments`` inside ``text[start:end]``, in argument order.

    Each key is searched after the previous argument's value; its value must begin within a few
    characters of the key, so a value equal to some other text of the call is never mistaken for it.
    """
    end = len(text) if end is None else end
    out: list[ArgumentSpan] = []
    cursor = start
    for key, value in arguments.items():
        hit = None
        for key_text in (json.dumps(key, ensure_ascii=False), json.dumps(key), key):
            k = text.find(key_text, cursor, end)
            while k != -1 and hit is None:
                after = k + len(key_text)
                hit = _decoded_at(text, after, min(end, after + _MAX_GAP), end, value)
                for vt in ([] if hit else _value_texts(value)):
                    v = text.find(vt, after, min(end, after + _MAX_GAP + len(vt)))
                    if v != -1 and v - after <= _MAX_GAP:
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
