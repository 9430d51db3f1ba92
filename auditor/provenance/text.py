"""Text normalisation that remembers where every character came from.

Provenance compares an argument value with the texts the model read, which spell the same thing
differently: another case, runs of blanks and newlines, curly or single quotes, JSON escapes
inside a tool output (``"a\\"b"``, ``\\n``, ``\\u00e9``), HTML entities in a fetched page. Both
sides go through `normalize`; a match found in the normalised text is mapped back to a character
range of the original through the offsets kept here, so an occurrence always points at real text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: Every quote character folds to ``'`` so that quoting style never decides a match.
QUOTES = frozenset("\"'`´‘’‚‛“”„‟‹›«»′″＂＇")
#: Invisible characters (zero-width spaces and joiners, soft hyphen, BOM) are dropped: they change
#: nothing a reader sees and are a known way to hide a value from naive matching.
INVISIBLE = frozenset("\u00ad\u200b\u200c\u200d\u2060\ufeff")

_ESCAPE = re.compile(
    r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"  # a surrogate pair
    r"|\\u([0-9a-fA-F]{4})"
    r"|\\([\"\\/bfnrt'])"  # JSON (and a lenient \')
    r"|&(#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|amp|lt|gt|quot|apos|nbsp);"  # the usual HTML entities
)
_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "'": "'"}
_ENTITY = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'", "nbsp": "\u00a0"}


@dataclass(frozen=True)
class Normalized:
    """A normalised text and, per character, the source range ``[starts[i], ends[i])`` it came from."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def source_span(self, a: int, b: int) -> tuple[int, int]:
        """The source characters behind normalised characters ``[a, b)`` (``b > a``)."""
        return self.starts[a], self.ends[b - 1]


def _decode_once(chars: list[tuple[str, int, int]]) -> list[tuple[str, int, int]] | None:
    """JSON / HTML escapes decoded (None when there are none); each decoded character keeps the
    source range of its whole escape sequence."""
    text = "".join(c for c, _, _ in chars)
    if "\\" not in text and "&" not in text:
        return None
    out: list[tuple[str, int, int]] = []
    pos = 0
    changed = False
    for m in _ESCAPE.finditer(text):
        out.extend(chars[pos:m.start()])
        src = (chars[m.start()][1], chars[m.end() - 1][2])
        if m.group(1):
            decoded = chr(0x10000 + ((int(m.group(1), 16) - 0xD800) << 10) + (int(m.group(2), 16) - 0xDC00))
        elif m.group(3):
            code = int(m.group(3), 16)
            decoded = "\ufffd" if 0xD800 <= code < 0xE000 else chr(code)
        elif m.group(4):
            decoded = _SIMPLE[m.group(4)]
        else:
            ent = m.group(5)
            if ent[0] == "#":
                code = int(ent[2:], 16) if ent[1] in "xX" else int(ent[1:])
                decoded = chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else "\ufffd"
            else:
                decoded = _ENTITY[ent]
        out.append((decoded, *src))
        pos = m.end()
        changed = True
    out.extend(chars[pos:])
    return out if changed else None


def _fold(chars: list[tuple[str, int, int]]) -> Normalized:
    """NFKC, casefold, quotes to ``'``, invisible characters dropped, blank runs to one space."""
    text: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for c, s, e in chars:
        if c in INVISIBLE:
            continue
        if unicodedata.combining(c) and text:  # compose with the previous character (e + ´ = é)
            composed = unicodedata.normalize("NFC", text[-1] + c)
            if len(composed) == 1:
                text[-1] = composed
                ends[-1] = e
                continue
        folded = c if c.isascii() and not c.isupper() else unicodedata.normalize("NFKC", c).casefold()
        for f in folded:
            if f.isspace():
                if text and text[-1] == " ":
                    ends[-1] = e
                    continue
                f = " "
            elif f in QUOTES:
                f = "'"
            text.append(f)
            starts.append(s)
            ends.append(e)
    return Normalized("".join(text), tuple(starts), tuple(ends))


def normalize(source: str, *, decode: bool = False) -> Normalized:
    """``source`` normalised for matching; with ``decode`` JSON and HTML escapes are decoded first
    (twice at most: a JSON string inside a JSON string)."""
    chars = [(c, i, i + 1) for i, c in enumerate(source)]
    if decode:
        for _ in range(2):
            decoded = _decode_once(chars)
            if decoded is None:
                break
            chars = decoded
    return _fold(chars)


def views(source: str) -> list[Normalized]:
    """The normalised readings of a segment's text: as written, and with its escapes decoded when
    it has any (a backslash may also be a Windows path separator, so the plain reading stays)."""
    plain = normalize(source)
    if "\\" not in source and "&" not in source:
        return [plain]
    decoded = normalize(source, decode=True)
    return [plain] if decoded.text == plain.text else [plain, decoded]


def core(text: str) -> tuple[int, int]:
    """The range of ``text`` without surrounding blanks and quotes (a value written ``'backup'``)."""
    a, b = 0, len(text)
    while a < b and (text[a] == " " or text[a] == "'"):
        a += 1
    while b > a and (text[b - 1] == " " or text[b - 1] == "'"):
        b -= 1
    return a, b


def _word(c: str) -> bool:
    return c.isalnum() or c == "_"


#: Characters that join two word characters into one longer unit: ``bob.smith``, ``2026-10-02``,
#: ``reports/q3``, ``it-support@``, ``C:\\x``. A match may not stop or start at one of them when a
#: word character lies beyond it. ``,`` and ``:`` join only digits (``1,000``, ``10:15``), so a
#: list ``a, b`` or ``mailto:bob@x`` still has units.
CONNECTORS = frozenset(".-/@\\")


def bounded(text: str, a: int, b: int) -> bool:
    """``text[a:b]`` is a whole unit: not part of a longer word, number, id, path or address.

    Checked only at an edge that is a word character: ``bob`` does not match in ``bobby``,
    ``bob.smith`` or ``it-bob``; ``3`` not in ``13``, ``1.3``, ``3.5``, ``1,300`` or ``Q3``.
    """
    if a > 0 and _word(text[a]):
        c = text[a - 1]
        if _word(c) or ((c in CONNECTORS or (c in ",:" and text[a].isdigit() and text[a - 2:a - 1].isdigit()))
                        and a > 1 and text[a - 2].isalnum()):
            return False
    if b < len(text) and _word(text[b - 1]):
        c = text[b]
        if _word(c) or ((c in CONNECTORS or (c in ",:" and text[b - 1].isdigit() and text[b + 1:b + 2].isdigit()))
                        and b + 1 < len(text) and text[b + 1].isalnum()):
            return False
    return True


def find_bounded(text: str, needle: str) -> list[tuple[int, int]]:
    """Every bounded occurrence of ``needle`` in ``text``."""
    out: list[tuple[int, int]] = []
    if not needle:
        return out
    i = text.find(needle)
    while i != -1:
        if bounded(text, i, i + len(needle)):
            out.append((i, i + len(needle)))
        i = text.find(needle, i + 1)
    return out
