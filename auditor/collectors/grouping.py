"""Which spans make one run: chat spans parsed once (`Chat`), one call traced by several
libraries kept once (`dedupe_calls`), a trace split by conversation (`split_conversations`), and
groups of one conversation traced apart stitched together (`stitch`). `auditor.collectors.assemble`
builds a trajectory from each group; its docstring tells the rules.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from auditor.trajectory import ToolDefinition

from auditor.collectors.conventions import (Msg, chat_content, conversation_of, response_id_of, span_role,
                                            tool_definitions, tool_info)
from auditor.collectors.issues import LoadIssue
from auditor.collectors.spans import SpanRecord


@dataclass
class Chat:
    """One chat span, parsed once: its messages and tool definitions in whatever convention."""

    span: SpanRecord
    inputs: list[Msg] | None
    outputs: list[Msg] | None
    tools: list[ToolDefinition] | None
    convention: str

    @property
    def has_content(self) -> bool:
        return bool(self.inputs) or bool(self.outputs)


def parse_chat_span(sp: SpanRecord) -> Chat:
    """Input/output messages and tool definitions of one chat span, in whatever convention."""
    content = chat_content(sp)
    return Chat(sp, content.inputs, content.outputs, tool_definitions(sp.attributes), content.convention)


Key = tuple[str, str]  # (trace id, span id)


def sid(s: SpanRecord) -> Key:
    return (s.trace_id, s.span_id)


def dedupe_calls(chats: list[SpanRecord], parsed: dict[Key, Chat], issues: list[LoadIssue]) -> dict[Key, Key]:
    """Chat spans of one call traced by several libraries -> {dropped: kept}."""
    same: dict[tuple[str, str], list[SpanRecord]] = defaultdict(list)
    for s in chats:
        rid = response_id_of(s)
        if rid:
            same[(s.trace_id, rid)].append(s)
    alias: dict[Key, Key] = {}
    for (_, rid), group in same.items():
        if len(group) < 2:
            continue

        def richness(sp: SpanRecord) -> tuple[int, int, int, int]:
            c = parsed[sid(sp)]
            msgs = (c.inputs or []) + (c.outputs or [])
            return (int(c.has_content), int(bool(c.tools)), sum(1 for m in msgs if m.reasoning), len(msgs))

        keep = max(group, key=richness)
        for sp in group:
            if sp is not keep:
                alias[sid(sp)] = sid(keep)
        issues.append(_issue(keep, f"{len(group)} chat spans trace the same call (response {rid!r}: "
                                   f"{', '.join(sorted(parsed[sid(sp)].convention for sp in group))}): several "
                                   "instrumentations wrap the client; kept the one that captured most"))
    return alias


def stitch(groups: list[tuple[str, list[SpanRecord]]], parsed: dict[Key, Chat]) -> list[tuple[str, list[SpanRecord]]]:
    """Groups of one conversation (shared conversation id, or one continuing another's
    messages; tool spans in traces of their own join the group whose messages name their call
    ids) -> one group each, keyed by the earliest (see the module docstring)."""
    n = len(groups)
    root = list(range(n))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    def union(a: int, b: int) -> None:  # b joins a
        ra, rb = find(a), find(b)
        if ra != rb:
            root[max(ra, rb)] = min(ra, rb)  # groups are in start order: the earliest stays the root

    convs: list[str | None] = []
    first_in: list[list[tuple[Any, ...]] | None] = []
    full: list[list[tuple[Any, ...]] | None] = []
    span_of: list[tuple[int, int] | None] = []
    call_ids: list[set[str]] = []  # the tool call ids a group's messages name
    for _, part in groups:
        convs.append(next((conversation_of(s) for s in part if conversation_of(s)), None))
        chats = sorted((parsed[sid(s)] for s in part if sid(s) in parsed), key=lambda c: c.span.start_time_unix_nano)
        call_ids.append({str(c.get("id")) for ch in chats for m in (ch.inputs or []) + (ch.outputs or [])
                         for c in m.tool_calls if c.get("id")}
                        | {str(m.tool_call_id) for ch in chats for m in ch.inputs or [] if m.tool_call_id})
        content = [c for c in chats if c.has_content]
        if not content:
            first_in.append(None)
            full.append(None)
            span_of.append(None)
            continue
        last = content[-1]
        first_in.append([m.key() for m in content[0].inputs or []])
        full.append([m.key() for m in last.inputs or []] + ([last.outputs[0].key()] if last.outputs else []))
        span_of.append((content[0].span.start_time_unix_nano, last.span.end_time_unix_nano))

    by_conv: dict[str, int] = {}
    for i, c in enumerate(convs):
        if c is not None:
            if c in by_conv:
                union(by_conv[c], i)
            else:
                by_conv[c] = i
    # a group's whole conversation (its last call's input and answer) -> the groups ending so, by
    # end time; a group continued by a later one leaves the list
    ending: dict[tuple[Any, ...], list[tuple[int, int]]] = defaultdict(list)
    for a in range(n):
        if full[a] and span_of[a] is not None:
            ending[tuple(full[a] or [])].append((span_of[a][1], a))
    for lst in ending.values():
        lst.sort()
    for b in range(n):
        head = first_in[b]
        if not head or span_of[b] is None:
            continue
        for k in range(len(head) - 1, 0, -1):  # the longest earlier conversation this call continues
            lst = ending.get(tuple(head[:k]))
            if not lst:
                continue
            j = bisect.bisect_right(lst, (span_of[b][0], n))  # ended before this one started ...
            while j > 0 and (lst[j - 1][1] == b or (convs[lst[j - 1][1]] and convs[b]
                                                     and convs[lst[j - 1][1]] != convs[b])):
                j -= 1  # ... and not another conversation's
            if j > 0:
                _, a = lst.pop(j - 1)  # the latest to end
                union(a, b)
                break
    # tool spans recorded outside any trace of the run (no root span): join the group whose messages
    # name their call ids
    for t in range(n):
        if span_of[t] is not None or any(sid(s) in parsed for s in groups[t][1]):
            continue
        ids = {str(info["call_id"]) for s in groups[t][1] if span_role(s) == "tool" and (info := tool_info(s))["call_id"]}
        owner = next((g for g in range(n) if g != t and ids and ids <= call_ids[g]), None)
        if owner is not None:
            union(owner, t)
    merged: dict[int, list[SpanRecord]] = defaultdict(list)
    for i, (_, part) in enumerate(groups):
        merged[find(i)].extend(part)
    return [(groups[r][0], merged[r]) for r in sorted(merged)]


def split_conversations(trace_id: str, spans: list[SpanRecord]) -> list[tuple[str, list[SpanRecord]]]:
    """One group per conversation when a trace holds several; spans without an id (own or
    inherited from an ancestor) join the conversation whose chat span ran last before them."""
    by_id = {s.span_id: s for s in spans}

    def conv(s: SpanRecord) -> str | None:
        seen = 0
        cur: SpanRecord | None = s
        while cur is not None and seen < 64:
            c = conversation_of(cur)
            if c:
                return c
            cur = by_id.get(cur.parent_span_id or "")
            seen += 1
        return None

    convs = {s.span_id: conv(s) for s in spans}
    chat_convs = [convs[s.span_id] for s in sorted(spans, key=lambda x: x.start_time_unix_nano)
                  if span_role(s) == "chat" and convs[s.span_id]]
    if len(set(chat_convs)) < 2:
        return [(trace_id, spans)]
    parts: dict[str, list[SpanRecord]] = {c: [] for c in dict.fromkeys(chat_convs)}
    chats = sorted((s for s in spans if span_role(s) == "chat" and convs[s.span_id]), key=lambda x: x.start_time_unix_nano)
    for s in spans:
        c = convs[s.span_id]
        if c is None or c not in parts:
            before = [x for x in chats if x.start_time_unix_nano <= s.start_time_unix_nano]
            c = convs[(before[-1] if before else chats[0]).span_id]
        parts[c].append(s)
    return [(f"{trace_id}:{c}", members) for c, members in parts.items() if members]


def _issue(sp: SpanRecord, message: str) -> LoadIssue:
    file, line = sp.where()
    return LoadIssue(file, message, line=line, span_id=sp.span_id, severity="warning")
