"""The units an argument value is made of, and the same units found in a context text.

A value is matched whole, and by the things inside it that identify a target on their own: an
email address, a URL, a domain, an id (UUID, hex id, ticket or order number, IBAN), a number, a
file path, a channel name. Each unit has a canonical ``key`` so that different spellings of one
thing compare equal: ``$1,000`` and ``1000``; ``1,000.50`` and ``1000.5``; ``./a/b.txt``,
``a\\b.txt`` and ``a/b.txt``; ``#general`` and ``general``; an IBAN with or without its spaces;
``https://x.example/a/`` and ``http://www.x.example/a``. Keys are computed on normalised text
(`auditor.provenance.text`), so they are case-folded too.

The domain of an email or URL is a *partial* unit: finding ``exfil.example`` says something about
``archive@exfil.example`` but less than finding the address.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel

from auditor.provenance.text import bounded, core, normalize

UnitKind = Literal["value", "email", "url", "domain", "id", "number", "path", "channel"]

#: Extensions that make a dotted word a file name (``notes.txt``), not a domain or a sentence end.
FILE_EXTENSIONS = frozenset(
    "txt md rst csv tsv json jsonl yaml yml toml ini cfg conf env xml html htm css js mjs ts tsx jsx py pyi "
    "rb go rs java kt c h cc cpp hpp cs php sh bash zsh ps1 bat sql db sqlite log pdf doc docx xls xlsx ppt "
    "pptx odt png jpg jpeg gif svg webp mp3 mp4 wav zip tar gz tgz bz2 xz 7z rar pem key crt pub lock ipynb "
    "swift scala lua r pl vue dockerfile tf hcl".split()
)

_URL = re.compile(r"(?<![\w@])(?:(?:https?|ftp|wss?)://|www\.)[^\s<>'\"`]+")
_EMAIL = re.compile(r"(?<![\w.+%-])[\w.+%-]+@[\w-]+(?:\.[\w-]+)+")
_IBAN = re.compile(r"(?<![\w-])[a-z]{2}\d{2}(?: ?[a-z0-9]{4}){2,7}(?: ?[a-z0-9]{1,4})?(?![\w-])")
_UUID = re.compile(r"(?<![\w-])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![\w-])")
_HEX = re.compile(r"(?<![\w-])(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,64}(?![\w-])")
_TICKET = re.compile(r"(?<![\w#/.-])(?:[a-z][a-z0-9]{1,9}[-_#]\d{2,}(?:[-_]\d+)*|[a-z]{2,10}\d{3,})(?![\w-]|\.\w)")
_PATH = re.compile(
    r"(?<![\w.~/\\:-])(?:[a-z]:|~|\.{1,2})?[\\/]?(?:[\w.~+-]+[\\/])+[\w.~+-]*"
    r"|(?<![\w.~/\\-])[\w+-]+(?:\.[\w+-]+)*\.(?P<ext>[a-z][a-z0-9]{0,9})(?![\w-]|\.\w)"
)
_DOMAIN = re.compile(r"(?<![\w@.-])(?:[\w](?:[\w-]{0,61}[\w])?\.)+[a-z][a-z0-9-]{1,62}(?![\w-]|\.\w)")
_NUMBER = re.compile(
    r"(?<![\w.])(?P<cur>[$€£¥₹]\s?)?(?P<sign>-)?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\w]|[.,]\d)")
_CHANNEL = re.compile(r"(?<![\w&#/])#(?P<name>[a-z][\w.-]*\w|[a-z])")


class Unit(BaseModel):
    """One thing to look for: ``text`` as written in the value, at ``[start, end)`` of it, compared
    by ``key``. ``whole``: the unit is all the value says (``$1,000`` is the number 1000), so
    finding it is as good as finding the value. ``partial``: the domain of an email or URL."""

    kind: UnitKind
    text: str
    key: str
    start: int
    end: int
    whole: bool = False
    partial: bool = False


@dataclass(frozen=True)
class Found:
    """A unit found in a normalised text: kind, key, normalised range, and (for a derived domain)
    the index of the unit it came from."""

    kind: UnitKind
    key: str
    start: int
    end: int
    parent: int | None = None


def _strip_url(s: str) -> str:
    while s and s[-1] in ".,;:!?'":
        s = s[:-1]
    for close, open_ in ((")", "("), ("]", "["), ("}", "{")):
        while s.endswith(close) and s.count(close) > s.count(open_):
            s = s[:-1]
    return s


def domain_key(host: str) -> str:
    host = host.strip(".")
    return host[4:] if host.startswith("www.") else host


def url_key(url: str) -> tuple[str, str] | None:
    """(key, host) of a URL: host without ``www.`` and port, path without a trailing slash, query;
    scheme and fragment are left out (``http``/``https`` and an anchor name the same target)."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    try:
        host = parts.hostname or ""
    except ValueError:
        return None
    if not host:
        return None
    host = domain_key(host)
    key = host + parts.path.rstrip("/")
    if parts.query:
        key += "?" + parts.query
    return key, host


def number_key(num: str, sign: str = "") -> str:
    """``1,000.50`` -> ``1000.5``; leading zeros are kept (``007`` is an id, not 7)."""
    n = num.replace(",", "")
    if "." in n:
        n = n.rstrip("0").rstrip(".")
    return (sign + n) if n.strip("0") else n


def path_key(path: str) -> str:
    """``./a\\b.txt`` -> ``a/b.txt``: forward slashes, no ``./`` prefix, no doubled or trailing slash."""
    p = re.sub(r"/{2,}", "/", path.replace("\\", "/"))
    while p.startswith("./"):
        p = p[2:]
    return p.rstrip("/") if len(p) > 1 else p


def path_suffixes(key: str) -> list[str]:
    """Proper suffixes of a path key on component boundaries (``x/a/b.txt`` -> ``a/b.txt``, ``b.txt``)."""
    parts = [p for p in key.split("/") if p]
    return ["/".join(parts[i:]) for i in range(1, len(parts))]


def domain_suffixes(key: str) -> list[str]:
    """Parent domains with two labels or more (``a.b.example`` -> ``b.example``)."""
    labels = key.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels) - 1)]


def _iban_ok(compact: str) -> bool:
    """The ISO 13616 check: move the first four characters to the end, letters to numbers, mod 97 == 1."""
    if not (15 <= len(compact) <= 34) or not compact.isalnum():
        return False
    moved = (compact[4:] + compact[:4]).upper()
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


def _iban(match: str) -> str | None:
    """The longest prefix of ``match`` (in whole groups) that is a valid IBAN, compacted."""
    groups = match.split(" ") if " " in match else [match]
    if len(groups) == 1:
        return match if _iban_ok(match) else None
    for n in range(len(groups), 1, -1):
        compact = "".join(groups[:n])
        if _iban_ok(compact):
            return compact
    return None


def extract(norm: str) -> list[Found]:
    """Every unit in a normalised text, longest-first: URLs and emails, then ids, paths, domains,
    numbers and channels in what they leave (a number inside a URL or an id is not a number)."""
    found: list[Found] = []
    mask = list(norm)

    def take(kind: UnitKind, key: str, a: int, b: int, parent: int | None = None, hide: bool = True) -> int:
        found.append(Found(kind, key, a, b, parent))
        if hide:
            mask[a:b] = " " * (b - a)
        return len(found) - 1

    for m in _URL.finditer(norm):
        raw = _strip_url(m.group())
        parsed = url_key(raw)
        if parsed is None:
            continue
        i = take("url", parsed[0], m.start(), m.start() + len(raw))
        h = raw.find(parsed[1])
        if h != -1:
            found.append(Found("domain", parsed[1], m.start() + h, m.start() + h + len(parsed[1]), i))
    text = "".join(mask)
    for m in _EMAIL.finditer(text):
        addr = m.group().rstrip(".")
        i = take("email", addr, m.start(), m.start() + len(addr))
        at = addr.index("@") + 1
        found.append(Found("domain", domain_key(addr[at:]), m.start() + at, m.start() + len(addr), i))
    text = "".join(mask)
    for m in _IBAN.finditer(text):
        compact = _iban(m.group())
        if compact is None:
            continue
        # the range of the valid prefix: as many characters as it has, plus the spaces between
        end, seen = m.start(), 0
        while seen < len(compact):
            seen += text[end] != " "
            end += 1
        take("id", compact, m.start(), end)
    text = "".join(mask)
    for pattern in (_UUID, _HEX, _TICKET):
        for m in pattern.finditer(text):
            take("id", re.sub(r"[-_#]", "", m.group()), m.start(), m.end())
        text = "".join(mask)
    for m in _PATH.finditer(text):
        raw = m.group()
        if m.group("ext") is not None:
            if m.group("ext") not in FILE_EXTENSIONS:
                continue
        else:
            raw = raw.rstrip(".,;:!?")
            if raw.count("/") + raw.count("\\") == 0 or not any(c.isalnum() for c in raw):
                continue
        take("path", path_key(raw), m.start(), m.start() + len(raw), hide=False)
    for m in _DOMAIN.finditer(text):
        last = m.group().rsplit(".", 1)[-1]
        if last in FILE_EXTENSIONS:
            continue
        take("domain", domain_key(m.group()), m.start(), m.end())
    text = "".join(mask)
    for m in _NUMBER.finditer(text):
        a = m.start("num") if not m.group("cur") and not m.group("sign") else m.start()
        if not bounded(text, m.start("num"), m.end()):  # 10 in 2026-10-02, 30 in 10:30 is not a number
            continue
        take("number", number_key(m.group("num"), m.group("sign") or ""), a, m.end())
    for m in _CHANNEL.finditer(text):
        take("channel", m.group("name"), m.start(), m.end())
    return found


#: Values too short or too common to say anything when they occur: they are still matched (as
#: whole tokens only), but flagged weak.
COMMON_WORDS = frozenset(
    "true false yes no none null nil ok okay all any default auto on off n/a na new none the and or "
    "asc desc high low medium normal".split()
)
MIN_INNER_NUMBER = 3  # a number inside a longer value counts as a unit only with this many characters


def is_weak(norm_core: str) -> bool:
    """Short (1-2 characters) or common values occur by chance in most texts."""
    return len(norm_core) <= 2 or norm_core in COMMON_WORDS


def _whole(norm: str, a: int, b: int) -> bool:
    """Whether a unit at ``[a, b)`` is all the value says, once a ``mailto:`` prefix, quotes,
    brackets and punctuation around it are set aside."""
    rest = norm[:a] + norm[b:]
    if norm[:a].strip(" '<(").endswith("mailto:"):
        rest = norm[:a].replace("mailto:", "") + norm[b:]
    return not any(c.isalnum() for c in rest)


def value_text(value: object) -> str:
    """An argument value as text: strings as they are, everything else as JSON would write it."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def units(value: object) -> list[Unit]:
    """What to look for: the whole value normalised (kind ``value``), then the units inside it.

    Ranges are in `value_text(value)`. A number inside a longer value is a unit only with
    ``MIN_INNER_NUMBER`` characters or more (a stray 4 in a sentence identifies nothing).
    """
    raw = value_text(value)
    norm = normalize(raw)
    a, b = core(norm.text)
    if a >= b:
        return []
    out = [Unit(kind="value", text=raw[norm.starts[a]:norm.ends[b - 1]], key=norm.text[a:b],
                start=norm.starts[a], end=norm.ends[b - 1], whole=True)]
    found = extract(norm.text)
    seen: set[tuple[str, str]] = set()
    for f in found:
        whole = f.parent is None and _whole(norm.text, f.start, f.end)
        if f.kind == "number" and not whole and len(f.key.lstrip("-")) < MIN_INNER_NUMBER:
            continue
        if (f.kind, f.key) in seen:
            continue
        seen.add((f.kind, f.key))
        s, e = norm.source_span(f.start, f.end)
        out.append(Unit(kind=f.kind, text=raw[s:e], key=f.key, start=s, end=e, whole=whole,
                        partial=f.parent is not None))
    return out


__all__ = ["Unit", "UnitKind", "Found", "units", "extract", "value_text", "is_weak",
           "path_key", "number_key", "url_key", "domain_key", "path_suffixes", "domain_suffixes"]
