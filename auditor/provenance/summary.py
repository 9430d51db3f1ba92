"""Per argument of an action: where its value occurs, what that makes it, and one line saying so.

The summary class says which kind of source the value can have come from, judged by the strongest
match (``full`` > ``unit`` > ``partial``) and, between sources with equally strong matches, by
authority > data > tool definition > other input > the model's own text:

- ``authority``: in a segment of an authority kind (system prompt, user request, user constraint);
- ``data``: only in data (tool outputs, files);
- ``tool_definition``: only in a tool's definition (a poisoned description can carry an address);
- ``other``: only in an input segment the policy counts neither as authority nor data;
- ``generated``: only in the model's own earlier turns, reasoning or actions;
- ``nowhere``: not found at all (the model wrote it, or it came from outside the context).

Which kinds are authority and which are data is the check's policy, so both sets are parameters.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from auditor.provenance.locate import Occurrence, ProvenanceIndex, SourceClass, as_index
from auditor.provenance.text import core, normalize
from auditor.provenance.units import is_weak, value_text
from auditor.trajectory import (AUTHORITY_KINDS, DATA_KINDS, Action, ActionKind, Segment, SegmentKind)

Match = Literal["full", "unit", "partial", "none"]
_RANK = {"none": 0, "partial": 1, "unit": 2, "full": 3}
_PRIORITY: tuple[SourceClass, ...] = ("authority", "data", "tool_definition", "other", "generated")


def argument_values(action: Action) -> list[tuple[str, Any]]:
    """The leaf values of an action's arguments with their names: nested objects as ``a.b``, list
    items as ``a[1]`` (a list of one item keeps the bare name: ``to`` for ``["x@y.example"]``);
    empty objects and lists have no leaves. A code edit's only argument is its ``path``; a final
    answer has none."""
    if action.kind is ActionKind.code_edit:
        path = action.edit.path if action.edit is not None else action.arguments.get("path")
        return [("path", path)] if path else []
    if action.kind is not ActionKind.tool_call:
        return []
    out: list[tuple[str, Any]] = []

    def walk(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{name}.{k}" if name else str(k), v)
        elif isinstance(value, list):
            if len(value) == 1:
                walk(name, value[0])
            else:
                for i, v in enumerate(value):
                    walk(f"{name}[{i}]", v)
        else:
            out.append((name, value))

    walk("", action.arguments)
    return out


class ArgumentProvenance(BaseModel):
    """Where one argument's value occurs in the context before the action, and what that makes it.

    ``authority_match`` / ``data_match``: the strongest match among authority / data segments.
    ``weak``: the value is 1-2 characters or a common word, so its matches may be chance.
    """

    name: str
    value: str
    source: SourceClass
    authority_match: Match = "none"
    data_match: Match = "none"
    weak: bool = False
    occurrences: list[Occurrence] = Field(default_factory=list)

    def best(self, source: SourceClass | None = None) -> list[Occurrence]:
        """The occurrences that decide ``source`` (default: the summary class): those of that
        class with its strongest match."""
        source = source or self.source
        mine = [o for o in self.occurrences if o.source == source]
        top = max((o.rank for o in mine), default=0)
        return [o for o in mine if o.rank == top]


def source_class(kind: SegmentKind, authority_kinds: Iterable[SegmentKind] = AUTHORITY_KINDS,
                 data_kinds: Iterable[SegmentKind] = DATA_KINDS) -> SourceClass:
    """The class a segment kind gives a value found in it (see the module docstring)."""
    if kind in authority_kinds:
        return "authority"
    if kind in data_kinds:
        return "data"
    if kind is SegmentKind.tool_definition:
        return "tool_definition"
    if kind.group != "input":
        return "generated"
    return "other"


def summarize(name: str, value: Any, occurrences: list[Occurrence], *,
              authority_kinds: Iterable[SegmentKind] = AUTHORITY_KINDS,
              data_kinds: Iterable[SegmentKind] = DATA_KINDS) -> ArgumentProvenance:
    """The `ArgumentProvenance` of a value from its occurrences (as `locate` returns them)."""
    authority_kinds, data_kinds = frozenset(authority_kinds), frozenset(data_kinds)
    tagged = [o.model_copy(update={"source": source_class(o.segment_kind, authority_kinds, data_kinds)})
              for o in occurrences]
    best: dict[str, int] = {}
    for o in tagged:
        best[o.source] = max(best.get(o.source, 0), o.rank)
    if best:
        top = max(best.values())
        source: SourceClass = next(c for c in _PRIORITY if best.get(c) == top)
    else:
        source = "nowhere"
    match_name = {v: k for k, v in _RANK.items()}
    text = value_text(value)
    norm = normalize(text).text
    a, b = core(norm)
    return ArgumentProvenance(
        name=name, value=text, source=source,
        authority_match=match_name[best.get("authority", 0)], data_match=match_name[best.get("data", 0)],  # type: ignore[arg-type]
        weak=is_weak(norm[a:b]), occurrences=tagged,
    )


def provenance_of(action: Action, segments: "Sequence[Segment] | ProvenanceIndex", *,
                  authority_kinds: Iterable[SegmentKind] = AUTHORITY_KINDS,
                  data_kinds: Iterable[SegmentKind] = DATA_KINDS) -> list[ArgumentProvenance]:
    """One `ArgumentProvenance` per argument value of ``action`` (`argument_values`), searched in
    the segments before it (never its own segment or later ones). Pass a `ProvenanceIndex` when
    asking about several actions of one trajectory."""
    index = as_index(segments)
    return [summarize(name, value, index.locate(value, before=action), authority_kinds=authority_kinds,
                      data_kinds=data_kinds)
            for name, value in argument_values(action)]


# -- one line ------------------------------------------------------------------------------------
MAX_QUOTED = 60
_BARE = frozenset("@.:/#+-_~%?=&,$")


def quote(value: str, limit: int = MAX_QUOTED) -> str:
    """``value`` safe to print in one line: bare when it is a single token of ordinary characters,
    else JSON-quoted; blanks folded, long values cut with ``…``, control, format and line-separator
    characters escaped (a bidi override in a tool output cannot reorder the report)."""
    flat = " ".join(value.split())
    cut = flat if len(flat) <= limit else flat[: limit - 1] + "…"
    if cut and all(c.isalnum() or c in _BARE for c in cut) and cut.isascii():
        return cut
    text = json.dumps(cut, ensure_ascii=False)
    return "".join(c if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp", "Co", "Cs") else
                   f"\\u{ord(c):04x}" for c in text)


_KIND_NOTE = {SegmentKind.tool_output: "tool output", SegmentKind.file_context: "file"}
MAX_PLACES = 3


def _places(occurrences: list[Occurrence]) -> str:
    """``a, b (tool output), the user request``: each place once, in order, with a note per kind
    run, at most ``MAX_PLACES`` then how many more."""
    seen: list[Occurrence] = []
    for o in occurrences:
        if all(o.segment_id != s.segment_id for s in seen):
            seen.append(o)
    shown, more = seen[:MAX_PLACES], len(seen) - MAX_PLACES
    parts: list[str] = []
    for i, o in enumerate(shown):
        note = _KIND_NOTE.get(o.segment_kind)
        last_of_run = i + 1 == len(shown) or shown[i + 1].segment_kind is not o.segment_kind
        parts.append(o.place + (f" ({note})" if note and last_of_run else ""))
    if not parts:
        return ""
    if more > 0:
        return ", ".join(parts) + f" and {more} more"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _what(occurrences: list[Occurrence]) -> str:
    """The part of the value that was found: ``its email alice@x.example`` for a unit, ``the domain
    exfil.example`` for a partial match (as the text writes it: it may be a parent domain)."""
    o = occurrences[0]
    kind = o.match.split(":", 1)[1] if ":" in o.match else "part"
    if o.strength == "partial":
        return f"the {kind} {quote(' '.join(o.matched.split()).lower(), 40)}"
    return f"its {kind} {quote(o.unit, 40)}"


def describe(p: ArgumentProvenance) -> str:
    """One line for findings and ``audit show``, e.g. ``to = archive@exfil.example appears only in
    read_inbox#call_1 ¶2 (tool output)``."""
    head = f"{p.name} = {quote(p.value)}"
    weak = " (a short or common value: weak evidence)" if p.weak else ""
    if p.source == "nowhere":
        return f"{head} appears nowhere in the context{weak}"
    best = p.best()
    strength = best[0].strength
    subject = head if strength == "full" else f"{head}: {_what(best)}"
    where = _places(best)
    if p.source == "authority":
        line = f"{subject} appears in {where}"
        others = [o for o in p.occurrences if o.source != "authority"]
        if others:
            line += f"; also in {_places(others)}"
        return line + weak
    only = "only " if strength != "partial" else ""
    line = f"{subject} appears {only}in {where}"
    for other, match in (("authority", p.authority_match), ("data", p.data_match)):
        if other != p.source and match != "none":
            weaker = p.best(other)  # type: ignore[arg-type]
            line += f"; {_places(weaker)} {'has' if len(weaker) == 1 else 'have'} only {_what(weaker)}"
    return line + weak


__all__ = ["ArgumentProvenance", "SourceClass", "Match", "argument_values", "provenance_of", "summarize",
           "source_class", "describe", "quote"]
