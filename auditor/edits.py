"""Parse Aider-style edit blocks out of an assistant reply: each block is one auditable action.

Formats (see Aider's docs): ``diff`` (path line, fence, SEARCH/=======/REPLACE markers with 5-9
marker characters; an empty SEARCH creates or appends), ``diff-fenced`` (path inside the fence),
``whole`` (path line then the full file in a fence) and ``udiff`` (``--- a`` / ``+++ b`` hunks).
Character ranges are kept so segmentation can map each block to its tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from auditor.trajectory import CodeEdit

_HEAD = re.compile(r"^<{5,9} SEARCH[^\n]*\n", re.M)
_DIVIDER = re.compile(r"^={5,9}[ \t]*\n", re.M)
_UPDATED = re.compile(r"^>{5,9} REPLACE[^\n]*(\n|$)", re.M)
_FENCE = re.compile(r"^(```|~~~)[^\n]*\n", re.M)
_UDIFF = re.compile(r"^--- (?:a/)?(?P<old>[^\n]+)\n\+\+\+ (?:b/)?(?P<new>[^\n]+)\n(?P<body>(?:(?:@@[^\n]*|[ +\-][^\n]*|\\[^\n]*)?\n)*)", re.M)
_WHOLE = re.compile(r"^(?P<path>[\w][\w./\\-]*)[ \t]*\n(?P<fence>```|~~~)[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)


@dataclass(frozen=True)
class EditBlock:
    edit: CodeEdit
    char_start: int  # start of the block in the reply (path line included)
    char_end: int


def _path_before(text: str, pos: int) -> tuple[str | None, int]:
    """The filename line for a block starting at ``pos``: the nearest non-fence line above it."""
    lines_end = pos
    for _ in range(3):
        prev_nl = text.rfind("\n", 0, max(lines_end - 1, 0))
        line = text[prev_nl + 1 : lines_end].strip()
        start = prev_nl + 1
        if line and not _FENCE.match(line + "\n"):
            return line.strip("`*: "), start
        if line.startswith(("```", "~~~")):
            lines_end = start
            continue
        lines_end = start
    return None, pos


def _search_replace(text: str) -> list[EditBlock]:
    blocks: list[EditBlock] = []
    pos = 0
    while True:
        head = _HEAD.search(text, pos)
        if not head:
            break
        div = _DIVIDER.search(text, head.end())
        upd = _UPDATED.search(text, div.end()) if div else None
        if not div or not upd:
            break  # truncated block: not an action the agent completed
        path, start = _path_before(text, head.start())
        fmt = "diff"
        if path is not None and _UPDATED.match(path + "\n"):
            # a block right after another one in the same fence: Aider reuses the previous path
            path, start = (blocks[-1].edit.path if blocks else None), head.start()
        if path is None or path.startswith(("```", "~~~")):
            path, fmt = "<unknown>", "diff"
        # diff-fenced: the path is the first line inside the fence
        fence_start = text.rfind("```", 0, head.start())
        if fence_start != -1:
            inner = text[fence_start:head.start()].split("\n")
            if len(inner) >= 3 and inner[1].strip() and not text[fence_start:head.start()].count("```") > 1:
                candidate = inner[1].strip()
                if "." in candidate or "/" in candidate:
                    path, fmt = candidate, "diff-fenced"
                    start = fence_start
        end = upd.end()
        close = re.compile(r"(```|~~~)[ \t]*(\n|$)").match(text, end)
        if close:
            end = close.end()
        blocks.append(
            EditBlock(
                CodeEdit(path=path, format=fmt, search=text[head.end():div.start()], replace=text[div.end():upd.start()]),
                start,
                end,
            )
        )
        pos = upd.end()
    return blocks


def _udiff(text: str) -> list[EditBlock]:
    """One block per ``--- a`` / ``+++ b`` file header; a new header ends the previous block
    (several files in one fenced diff are several edits)."""
    out = []
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln))
    i = 0
    while i < len(lines) - 1:
        old_line, new_line = lines[i], lines[i + 1]
        if not (old_line.startswith("--- ") and new_line.startswith("+++ ")):
            i += 1
            continue
        start = offsets[i]
        j = i + 2
        body: list[str] = []
        while j < len(lines):
            ln = lines[j]
            if ln.startswith("--- ") and j + 1 < len(lines) and lines[j + 1].startswith("+++ "):
                break  # next file
            if not (ln.startswith(("@@", " ", "+", "-", "\\")) or ln in ("\n", "\r\n")):
                break
            body.append(ln.rstrip("\r\n"))
            j += 1
        while body and body[-1] == "":  # a blank line ends the diff, it is not context
            body.pop()
            j -= 1
        i = max(j, i + 2)
        if not any(b.startswith(("@@", "+", "-")) for b in body):
            continue
        minus = "".join(b[1:] + "\n" for b in body if b.startswith((" ", "-")) or b == "")
        plus = "".join(b[1:] + "\n" for b in body if b.startswith((" ", "+")) or b == "")
        path = _strip_prefix(new_line[4:].strip(), "b/")
        if path == "/dev/null":
            path = _strip_prefix(old_line[4:].strip(), "a/")
        out.append(EditBlock(CodeEdit(path=path, format="udiff", search=minus, replace=plus), start, offsets[j]))
    return out


def _strip_prefix(path: str, prefix: str) -> str:
    path = path.split("\t", 1)[0]  # "--- a/x.py\t2024-01-01 ..." timestamps
    return path[len(prefix):] if path.startswith(prefix) else path


def _whole(text: str) -> list[EditBlock]:
    return [
        EditBlock(CodeEdit(path=m.group("path"), format="whole", replace=m.group("body")), m.start(), m.end())
        for m in _WHOLE.finditer(text)
    ]


EDIT_FORMATS = ("diff", "diff-fenced", "udiff", "whole")


def parse_edit_blocks(text: str, fmt: str | None = None) -> list[EditBlock]:
    """All edit blocks in ``text``, in order. ``fmt`` forces one format; by default the first
    format that finds blocks wins (SEARCH/REPLACE, then udiff, then whole-file)."""
    parsers = {"diff": _search_replace, "diff-fenced": _search_replace, "udiff": _udiff, "whole": _whole}
    if fmt:
        if fmt not in parsers:
            raise ValueError(f"unknown edit format {fmt!r}; known: {', '.join(EDIT_FORMATS)}")
        return parsers[fmt](text)
    for parser in (_search_replace, _udiff):
        blocks = parser(text)
        if blocks:
            return blocks
    return []
