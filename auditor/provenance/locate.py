"""Where a value occurs in the segments the model read before an action.

`ProvenanceIndex` normalises every segment's text once (both readings: as written and with JSON /
HTML escapes decoded) and indexes the units in it by key, so locating tens of argument values in
tens of segments is a handful of dictionary look-ups and substring searches per segment.

Matches, strongest first (``strength``):

- ``exact``: the value as written, case and all, as a whole unit of the raw text;
- ``normalized``: the value after normalisation (case, blanks, quotes, escapes) as a whole unit;
- ``unit:<kind>``: a unit of the value (an email, URL, id, number, path, channel, domain) with the
  same key in the text; ``full`` strength when the unit is all the value says (``$1,000`` found as
  ``1000``), ``unit`` strength when it is a part (the address in ``Alice <alice@x.example>``);
- ``partial:domain``: the domain of an email or URL of the value (or a parent or subdomain of it),
  in a segment where the address itself is not; ``partial:path``: a shorter tail of the value's
  path (``reports/q3.md`` for ``/srv/reports/q3.md``).

Short values are handled by boundaries, not by a minimum length: every match must be a whole unit
of the text (`auditor.provenance.text.bounded`), so ``1`` never matches inside ``15``, ``1.5``,
``call_1`` or a date, and ``no`` never inside ``note``. A legitimate short value (``limit=3`` from
"the top 3 emails") is still found; since a 1-2 character token or a common word (``yes``,
``true``) also occurs by chance, such a value is flagged ``weak``
(`auditor.provenance.units.is_weak`) and its matches should count for little.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from auditor.provenance.text import Normalized, find_bounded, views
from auditor.provenance.units import (Unit, domain_suffixes, extract, path_suffixes, units,
                                      value_text)
from auditor.trajectory import Action, Segment, SegmentKind

Strength = Literal["full", "unit", "partial"]
#: What a value found in a segment can have come from (see `auditor.provenance.summary`).
SourceClass = Literal["authority", "data", "tool_definition", "other", "generated", "nowhere"]
_RANK = {"full": 3, "unit": 2, "partial": 1}


class Occurrence(BaseModel):
    """One place a value (or a unit of it) occurs: the segment, how it matched, the characters
    ``[char_start, char_end)`` of ``segment.text`` that matched (``matched``), and the part of the
    value looked for (``unit``)."""

    segment_id: str
    segment_kind: SegmentKind
    segment_label: str
    place: str  # short name for a sentence: "read_inbox#call_1 ¶2", "the user request"
    message_index: int | None
    match: str  # exact | normalized | unit:<kind> | partial:domain | partial:path
    strength: Strength
    unit: str
    char_start: int
    char_end: int
    matched: str
    source: SourceClass | None = None  # the class of the segment's kind, once a policy has said

    @property
    def rank(self) -> int:
        return _RANK[self.strength]


def place(segment: Segment) -> str:
    """A short name of a segment for a one-line sentence (``read_inbox#call_1 ¶2``), from its kind
    and the head of its label (the part before the quoted snippet)."""
    head = segment.label.split(': "', 1)[0].strip()
    kind = segment.kind
    if kind is SegmentKind.system:
        return "the system prompt" + (head[len("system"):] if head.startswith("system ¶") else "")
    if kind is SegmentKind.user_request:
        return "the user request"
    if kind is SegmentKind.user_constraint:
        return "a user constraint"
    if kind is SegmentKind.tool_output:
        return head[len("tool "):] if head.startswith("tool ") else head
    if kind is SegmentKind.file_context:
        if head.startswith("file "):
            return head[len("file "):]
        return "the files note" if head.startswith("files note") else head
    if kind is SegmentKind.tool_definition:
        return f"the {segment.provenance.tool_name or head} tool definition"
    if kind is SegmentKind.reasoning:
        return "the agent's " + head
    if kind is SegmentKind.prior_turn:
        if head.startswith("call "):
            return "the agent's earlier " + head
        return "the agent's earlier turn" + (head[len("assistant"):] if head.startswith("assistant") else "")
    if kind is SegmentKind.action:
        return "the agent's earlier " + head
    return head or segment.id


@dataclass
class _Entry:
    """One segment, read: its normalised views and the units in each, by (kind, key)."""

    position: int
    segment: Segment
    views: list[Normalized]
    units: dict[tuple[str, str], list[tuple[int, int]]] = field(default_factory=dict)


def _read(position: int, segment: Segment) -> _Entry:
    entry = _Entry(position, segment, views(segment.text))
    index: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for view in entry.views:
        for f in extract(view.text):
            span = view.source_span(f.start, f.end)
            index[(f.kind, f.key)].append(span)
            if f.kind == "domain":
                for parent in domain_suffixes(f.key):
                    index[("domain_parent", parent)].append(span)  # this text names a subdomain of it
            elif f.kind == "path":
                for tail in path_suffixes(f.key):
                    index[("path_tail", tail)].append(span)
    entry.units = {k: sorted(set(v)) for k, v in index.items()}
    return entry


Before = int | Action | None


class ProvenanceIndex:
    """The segments of one trajectory, read once for matching.

    Build it once per trajectory and call `locate` for every value, or pass it wherever a function
    of this package takes ``segments``.
    """

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.segments = list(segments)
        self._entries = [_read(i, s) for i, s in enumerate(self.segments)]

    def __len__(self) -> int:
        return len(self.segments)

    # -- which segments count --------------------------------------------------------------------
    def in_scope(self, before: Before) -> list[int]:
        """Positions of the segments the model had read before ``before``.

        - None: every segment.
        - a token position: segments with ``token_end <= before``; a tool definition the renderer
          could not place (a template that rewrites it) still counts, since the prompt carries it.
        - an Action: never its own segments, nor segments of another model call's context (a
          segment's ``context_id`` differs from the action's). When its segment is placed on tokens, a placed
          segment counts when it ends before the action's first token. Otherwise message order: a
          segment of an earlier message counts, tool definitions (no message: the prompt's head)
          count, and in the action's own message the segments before the action's first segment
          (reasoning, text, earlier parallel calls) count; a later action's segment never does.
        """
        segs = self.segments
        if before is None:
            return list(range(len(segs)))
        if isinstance(before, bool) or not isinstance(before, (int, Action)):
            raise TypeError(f"before must be a token position, an Action or None, not {type(before).__name__}")
        if isinstance(before, int):
            return [i for i, s in enumerate(segs)
                    if (s.token_end is not None and s.token_end <= before)
                    or (s.token_end is None and s.kind is SegmentKind.tool_definition)]
        own = [i for i, s in enumerate(segs) if s.action_id == before.id]
        first = own[0] if own else None
        own_set = set(own)
        starts = [segs[i].token_start for i in own if segs[i].token_start is not None]
        token = min(starts) if starts else None
        out = []
        for i, s in enumerate(segs):
            if i in own_set or s.context_id != before.context_id:  # another model call's context: never seen
                continue
            if token is not None and s.token_end is not None:
                if s.token_end <= token:
                    out.append(i)
                continue
            mi = s.provenance.message_index
            if mi is None or mi < before.message_index:
                out.append(i)
            elif mi == before.message_index and first is not None and i < first:
                out.append(i)
            elif mi == before.message_index and first is None and s.provenance.field == "reasoning":
                out.append(i)
        return out

    # -- matching --------------------------------------------------------------------------------
    def locate(self, value: object, *, before: Before = None) -> list[Occurrence]:
        """Every occurrence of ``value`` or a unit of it in the segments in scope (see `in_scope`),
        in segment order; within a segment, a match inside a stronger one is left out, and a
        partial match only where its address is not found."""
        wanted = units(value)
        if not wanted:
            return []
        raw = value_text(value)
        whole = wanted[0]
        exact = raw.strip()
        out: list[Occurrence] = []
        for i in self.in_scope(before):
            out.extend(self._in_entry(self._entries[i], raw, exact, whole, wanted))
        return out

    def _in_entry(self, entry: _Entry, raw: str, exact: str, whole: Unit, wanted: list[Unit]) -> list[Occurrence]:
        seg = entry.segment
        hits: list[tuple[int, int, str, Strength, str]] = []  # (start, end, match, strength, unit)
        exact_spans = find_bounded(seg.text, exact) if exact else []
        for a, b in exact_spans:
            hits.append((a, b, "exact", "full", whole.text))
        for view in entry.views:
            for a, b in find_bounded(view.text, whole.key):
                s, e = view.source_span(a, b)
                if (s, e) not in exact_spans:
                    hits.append((s, e, "normalized", "full", whole.text))
        parents_found: set[int] = set()
        partial: list[tuple[int, Unit, list[tuple[int, int]], str]] = []
        for n, u in enumerate(wanted[1:], 1):
            if u.partial:
                continue
            spans = list(entry.units.get((u.kind, u.key), []))
            if u.kind == "path":
                spans += entry.units.get(("path_tail", u.key), [])
            if u.kind == "channel":  # #general is the channel called general, however the text says it
                spans += [view.source_span(a, b) for view in entry.views for a, b in find_bounded(view.text, u.key)]
            if spans:
                parents_found.add(n)
                for s, e in spans:
                    hits.append((s, e, f"unit:{u.kind}", "full" if u.whole else "unit", u.text))
            elif u.kind == "path":
                for tail in path_suffixes(u.key):
                    if ("path", tail) in entry.units and tail.count("/"):
                        partial.append((n, u, entry.units[("path", tail)], "partial:path"))
                        break
        for n, u in enumerate(wanted[1:], 1):
            if u.kind != "domain" or n in parents_found:
                continue
            if u.partial and _parent(wanted, n) in parents_found:
                continue  # the address is here: its domain adds nothing
            spans = list(entry.units.get(("domain", u.key), [])) if u.partial else []
            spans += entry.units.get(("domain_parent", u.key), [])  # a subdomain of it
            for sup in domain_suffixes(u.key):  # a parent domain of it
                spans += entry.units.get(("domain", sup), [])
            if spans:
                partial.append((n, u, spans, "partial:domain"))
        for _, u, spans, match in partial:
            for s, e in spans:
                hits.append((s, e, match, "partial", u.text))
        return [self._occurrence(seg, *h) for h in _strongest(hits)]

    @staticmethod
    def _occurrence(seg: Segment, s: int, e: int, match: str, strength: Strength, unit: str) -> Occurrence:
        return Occurrence(
            segment_id=seg.id, segment_kind=seg.kind, segment_label=seg.label, place=place(seg),
            message_index=seg.provenance.message_index, match=match, strength=strength, unit=unit,
            char_start=s, char_end=e, matched=seg.text[s:e],
        )


_MATCH_ORDER = {"exact": 0, "normalized": 1}


def _parent(wanted: list[Unit], n: int) -> int | None:
    """The unit (an email or URL) that a derived domain unit was cut from."""
    u = wanted[n]
    return next((k for k in range(n - 1, 0, -1)
                 if not wanted[k].partial and wanted[k].start <= u.start and u.end <= wanted[k].end), None)


def _strongest(hits: list[tuple[int, int, str, Strength, str]]) -> list[tuple[int, int, str, Strength, str]]:
    """Hits in text order without those inside a stronger (or equal, earlier-listed) hit."""
    ranked = sorted(hits, key=lambda h: (-_RANK[h[3]], _MATCH_ORDER.get(h[2], 2), h[0], -(h[1] - h[0])))
    kept: list[tuple[int, int, str, Strength, str]] = []
    for h in ranked:
        if any(k[0] <= h[0] and h[1] <= k[1] for k in kept):
            continue
        kept.append(h)
    return sorted(kept, key=lambda h: (h[0], h[1]))


def as_index(segments: "Sequence[Segment] | ProvenanceIndex") -> ProvenanceIndex:
    return segments if isinstance(segments, ProvenanceIndex) else ProvenanceIndex(segments)


def locate(value: object, segments: "Sequence[Segment] | ProvenanceIndex", *, before: Before = None) -> list[Occurrence]:
    """Every segment (in scope of ``before``) whose text contains ``value`` or a unit of it; see
    `ProvenanceIndex.locate`. Pass a `ProvenanceIndex` when locating many values."""
    return as_index(segments).locate(value, before=before)


__all__ = ["Occurrence", "ProvenanceIndex", "Strength", "SourceClass", "locate", "place", "as_index"]
