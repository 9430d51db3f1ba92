"""Which traces of a span file must be assembled together, found without keeping the spans.

`auditor.collectors.assemble` builds trajectories from all the spans it is given at once: it
joins traces (one conversation traced apart, a vLLM request with its client's chat span, a tool
span traced on its own). A large file cannot be held in memory whole, so a first pass feeds every
span to `SpanIndex.add` and keeps only where each trace's spans are (record offsets), when it
started, and the small keys that can join it to another trace; `components` then groups the
traces that may be joined (a union-find over those keys), and each group can be assembled alone
with the same result as the whole file. The keys over-approximate the joins (two runs that open
with the same system prompt and user request share a key, say): a group is never too small,
sometimes larger than needed.

The keys, after the rules of `auditor.collectors.grouping` and `assemble_trajectories`:

- a conversation id on any span joins every trace carrying it;
- a vLLM ``llm_request`` span joins the trace of the chat span it belongs to: its parent span
  id, else a request id equal to that chat span's response id;
- stitching: a trace whose first chat call's input begins with everything an earlier trace's last
  call saw and answered continues that trace; the first two messages of each (one, when the
  earlier conversation is a single message) are the key;
- a trace with tool spans and no chat span joins the traces whose messages name its call ids.

Memory: a few dozen bytes per trace and per chat span (hashes of keys), one offset per record
per trace; never a span's content.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from auditor.collectors.conventions import conversation_of, response_id_of, span_role, tool_info
from auditor.collectors.conventions.vllm import is_llm_request, response_ids
from auditor.collectors.grouping import parse_chat_span
from auditor.collectors.spans import SpanRecord


class _Trace:
    __slots__ = ("records", "start", "first", "last", "has_chat", "tool_calls")

    def __init__(self) -> None:
        self.records: list[int] = []  # offsets of the records holding its spans, ascending
        self.start = 2**63
        # (start, head[:1], head[:2] or None, len(head)) of its first call with content
        self.first: tuple[int, int, int | None, int] | None = None
        # (start, key of the whole conversation's first 1-2 messages, its length) of its last call with content
        self.last: tuple[int, int, int] | None = None
        self.has_chat = False
        self.tool_calls: list[int] | None = None  # its tool spans' call ids (hashed), looked up if it has no chat


def _h(*parts: Any) -> int:
    """A key as a 64-bit hash (a collision only joins two groups: still correct, a little larger)."""
    return hash(parts)


class SpanIndex:
    """Feed every span with the offset and size of the record it was read from (`add`, `record`),
    then read the groups of traces to assemble together (`components`)."""

    def __init__(self) -> None:
        self.traces: dict[str, _Trace] = {}
        self.sizes: dict[int, int] = {}  # record offset -> bytes
        self.lines: dict[int, int] = {}  # record offset -> line number
        self._root: dict[Any, Any] = {}  # union-find: trace ids (str) and keys (int hashes)
        self._lookups: list[tuple[str, int]] = []  # (trace, key) joined only if the key is registered
        self._named_calls: dict[int, str] = {}  # call id named in a chat message (hashed) -> a trace naming it

    # -- union-find --------------------------------------------------------------------------------
    def _find(self, x: Any) -> Any:
        root = self._root.setdefault(x, x)
        while root != self._root[root]:
            root = self._root[root]
        while x != root:  # path compression
            self._root[x], x = root, self._root[x]
        return root

    def _union(self, a: Any, b: Any) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self._root[rb] = ra

    # -- the first pass ------------------------------------------------------------------------
    def record(self, offset: int, size: int, line: int) -> None:
        """A record (a line) of the file: where it is, how long, which line."""
        self.sizes[offset] = size
        self.lines[offset] = line

    def add(self, sp: SpanRecord, offset: int) -> None:
        tid = sp.trace_id
        t = self.traces.get(tid)
        if t is None:
            t = self.traces[tid] = _Trace()
            self._find(tid)
        if not t.records or t.records[-1] != offset:
            t.records.append(offset)
        t.start = min(t.start, sp.start_time_unix_nano)
        conv = conversation_of(sp)
        if conv:
            self._union(tid, _h("c", conv))
        if is_llm_request(sp):
            if sp.parent_span_id:
                self._lookups.append((tid, _h("s", sp.parent_span_id)))
            for rid in response_ids(sp):
                self._lookups.append((tid, _h("r", rid)))
            return
        role = span_role(sp)
        if role == "chat":
            t.has_chat = True
            t.tool_calls = None  # looked up only for traces without a chat span
            self._union(tid, _h("s", sp.span_id))
            rid = response_id_of(sp)
            if rid:
                self._union(tid, _h("r", rid))
            self._chat_content(t, tid, sp)
        elif role == "tool" and not t.has_chat:
            cid = tool_info(sp)["call_id"]
            if cid:
                t.tool_calls = (t.tool_calls or []) + [_h("call", str(cid))]

    def _chat_content(self, t: _Trace, tid: str, sp: SpanRecord) -> None:
        chat = parse_chat_span(sp)
        msgs = (chat.inputs or []) + (chat.outputs or [])
        for m in msgs:
            for c in m.tool_calls:
                if c.get("id"):
                    self._named_calls.setdefault(_h("call", str(c["id"])), tid)
            if m.tool_call_id:
                self._named_calls.setdefault(_h("call", str(m.tool_call_id)), tid)
        if not chat.has_content:
            return
        start = sp.start_time_unix_nano
        head = [m.key() for m in chat.inputs or []]
        if t.first is None or start < t.first[0]:
            t.first = (start, _h(*head[:1]), _h(*head[:2]) if len(head) >= 2 else None, len(head))
        if t.last is None or start >= t.last[0]:
            full = head + ([chat.outputs[0].key()] if chat.outputs else [])
            t.last = (start, _h(*full[:2]), len(full))

    # -- the groups ------------------------------------------------------------------------------
    def components(self) -> list[tuple[list[str], int, int]]:
        """Groups of traces to assemble together, each as (trace ids, start, bytes of its records),
        in the order they started."""
        ends: set[int] = set()
        for tid, t in self.traces.items():
            if t.last is not None:
                key = _h("f", min(t.last[2], 2), t.last[1])
                ends.add(key)
                self._union(tid, key)
        for tid, t in self.traces.items():
            if t.first is None:
                continue
            _, h1, h2, n = t.first
            if h2 is not None and _h("f", 2, h2) in ends:  # continues a conversation of 2+ messages
                self._union(tid, _h("f", 2, h2))
            if n >= 2 and _h("f", 1, h1) in ends:  # continues a one-message conversation
                self._union(tid, _h("f", 1, h1))
        for tid, key in self._lookups:
            if key in self._root:
                self._union(tid, key)
        for tid, t in self.traces.items():
            if not t.has_chat and t.tool_calls:
                for cid in t.tool_calls:
                    owner = self._named_calls.get(cid)
                    if owner is not None:
                        self._union(tid, owner)
        groups: dict[Any, list[str]] = defaultdict(list)
        for tid in self.traces:
            groups[self._find(tid)].append(tid)
        out = []
        for members in groups.values():
            records = {o for tid in members for o in self.traces[tid].records}
            out.append((members, min(self.traces[tid].start for tid in members), sum(self.sizes[o] for o in records)))
        out.sort(key=lambda c: c[1])
        return out


def batches(components: list[tuple[list[str], int, int]], budget_bytes: int) -> list[list[str]]:
    """Consecutive groups of traces whose records add up to about ``budget_bytes`` (a group larger
    than that is a batch of its own: its spans must be in memory together to be assembled)."""
    out: list[list[str]] = []
    current: list[str] = []
    size = 0
    for members, _, nbytes in components:
        if current and size + nbytes > budget_bytes:
            out.append(current)
            current, size = [], 0
        current.extend(members)
        size += nbytes
    if current:
        out.append(current)
    return out
