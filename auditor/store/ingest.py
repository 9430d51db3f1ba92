"""Turning spans, trajectories and audits into Arrow tables, column by column.

The store inserts each table with one ``INSERT … SELECT … FROM <arrow table>`` statement, so a
run of a thousand actions is a handful of bulk inserts rather than a million row-by-row ones.
Everything here is pure (no database): easy to test and to reuse.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
from pydantic_core import to_json

from auditor.audit.schema import TrajectoryAudit
from auditor.trajectory import Trajectory, trajectory_sha256  # noqa: F401 - the store's name for it
from auditor.actions import with_actions

TS = pa.timestamp("us", tz="UTC")
STR = pa.string()
INT = pa.int32()
BIG = pa.int64()
DBL = pa.float64()
BOOL = pa.bool_()
STRS = pa.list_(pa.string())
FLOATS = pa.list_(pa.float32())

#: Arrow column types of every table the store bulk-loads (names match the SQL columns).
SCHEMAS: dict[str, list[tuple[str, pa.DataType]]] = {
    "trajectories": [
        ("trajectory_id", STR), ("source", STR), ("trace_id", STR), ("schema_version", INT),
        ("content_sha256", STR), ("n_messages", INT), ("n_actions", INT), ("content_captured", BOOL),
        ("metadata", STR), ("tools", STR), ("document", STR), ("ingested_at", TS),
    ],
    "messages": [
        ("trajectory_id", STR), ("message_index", INT), ("role", STR), ("content", STR), ("reasoning", STR),
        ("tool_calls", STR), ("tool_call_id", STR), ("name", STR), ("metadata", STR),
    ],
    "actions": [
        ("trajectory_id", STR), ("action_id", STR), ("step", INT), ("kind", STR), ("tool_name", STR),
        ("tool_call_id", STR), ("arguments", STR), ("message_index", INT), ("edit", STR),
        ("char_start", INT), ("char_end", INT), ("summary", STR), ("context_id", STR),
    ],
    "contexts": [
        ("trajectory_id", STR), ("context_id", STR), ("position", INT), ("n_messages", INT), ("messages", STR),
        ("tools", STR), ("metadata", STR),
    ],
    "runs": [
        ("run_id", STR), ("created_at", TS), ("model", STR), ("method", STR), ("hops", INT),
        ("auditor_version", STR), ("device", STR), ("dtype", STR), ("settings", STR), ("recorded_at", TS),
    ],
    "audits": [
        ("run_id", STR), ("trajectory_id", STR), ("content_sha256", STR), ("n_tokens", INT), ("n_segments", INT),
        ("n_actions", INT), ("tokens", STRS), ("dropped", STRS), ("unplaced", STRS), ("notes", STRS), ("forward_seconds", DBL),
        ("seconds", DBL), ("trajectory", STR), ("recorded_at", TS), ("causal_seconds", DBL),
    ],
    "segments": [
        ("run_id", STR), ("trajectory_id", STR), ("segment_id", STR), ("kind", STR), ("label", STR), ("text", STR),
        ("message_index", INT), ("field", STR), ("tool_call_id", STR), ("tool_name", STR), ("path", STR),
        ("char_start", INT), ("char_end", INT), ("action_id", STR), ("token_start", INT), ("token_end", INT), ("position", INT),
        ("context_id", STR),
    ],
    "audit_contexts": [
        ("run_id", STR), ("trajectory_id", STR), ("context_id", STR), ("n_tokens", INT), ("tokens", STRS),
        ("forward_seconds", DBL), ("reused_tokens", INT),
    ],
    "action_audits": [
        ("run_id", STR), ("trajectory_id", STR), ("action_id", STR), ("context_end", INT), ("output_start", INT),
        ("output_end", INT), ("n_drivers", INT), ("layer_shares", STR), ("seconds", DBL), ("causal", STR),
        ("provenance", STR),
    ],
    "attributions": [
        ("run_id", STR), ("trajectory_id", STR), ("action_id", STR), ("segment_id", STR), ("kind", STR),
        ("label", STR), ("score", DBL), ("share", DBL), ("rank", INT), ("hop", INT),
    ],
    "action_arguments": [
        ("run_id", STR), ("trajectory_id", STR), ("action_id", STR), ("argument", STR), ("position", INT),
        ("token_start", INT), ("token_end", INT), ("flow_ratio", DBL), ("n_drivers", INT), ("scores", FLOATS),
        ("causal", STR),
    ],
    "argument_attributions": [
        ("run_id", STR), ("trajectory_id", STR), ("action_id", STR), ("argument", STR), ("segment_id", STR),
        ("kind", STR), ("label", STR), ("score", DBL), ("share", DBL), ("rank", INT),
    ],
    "hop_flows": [
        ("run_id", STR), ("trajectory_id", STR), ("action_id", STR), ("hop", INT), ("flow_ratio", DBL),
        ("by_kind", STR),
    ],
    "token_scores": [
        ("run_id", STR), ("trajectory_id", STR), ("action_id", STR), ("context_end", INT), ("scores", FLOATS),
    ],
}

#: Tables written per (run, trajectory) by `record_audit`, children before parents.
AUDIT_TABLES = ("token_scores", "hop_flows", "argument_attributions", "action_arguments", "attributions",
                "action_audits", "segments", "audit_contexts", "audits")
#: Tables written per trajectory by `trajectory_tables` (a changed trajectory replaces its rows).
TRAJECTORY_TABLES = ("messages", "actions", "contexts", "trajectories")


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, default=str)


class Columns:
    """Column-wise accumulator for one table; `.table()` gives the Arrow table."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.schema = SCHEMAS[name]
        self.cols: dict[str, list[Any]] = {c: [] for c, _ in self.schema}

    def add(self, **row: Any) -> None:
        for c, _ in self.schema:
            self.cols[c].append(row.get(c))

    def extend(self, column: str, values: Iterable[Any]) -> None:
        self.cols[column].extend(values)

    def __len__(self) -> int:
        return len(self.cols[self.schema[0][0]])

    def table(self) -> pa.Table:
        return pa.table({c: pa.array(self.cols[c], type=t) for c, t in self.schema})


# -- spans ---------------------------------------------------------------------------------------

_SPAN_JSON = {"attributes": "{}", "events": "[]", "links": "[]", "status": "{}", "resource": "{}"}  # -> default
_SPAN_TEXT = ("trace_id", "span_id", "parent_span_id", "name", "kind")


def _span_fields(span: Any) -> Any:
    """Something with the span's fields as attributes or keys: a SpanRecord itself, a dict, or
    what anything else with ``model_dump`` gives."""
    if isinstance(span, dict) or (hasattr(span, "model_dump") and hasattr(span, "trace_id")):
        return span
    if hasattr(span, "model_dump"):
        return span.model_dump(mode="json")
    raise TypeError(f"expected a SpanRecord or dict, got {type(span).__name__}")


def _get(d: Any, key: str) -> Any:
    return d.get(key) if isinstance(d, dict) else getattr(d, key, None)


def _json_text(value: Any) -> str:
    # pydantic's serializer (what SpanRecord.model_dump_json uses): compact, UTF-8, bytes as base64
    return to_json(value, bytes_mode="base64", fallback=str).decode("utf-8")


def spans_table(spans: Sequence[Any]) -> pa.Table:
    """Arrow columns of spans (SpanRecords or dicts), ready for `SPANS_SELECT`: the first of
    duplicates within the batch, none without ids, nested fields as JSON text. Built column by
    column in Python: DuckDB then only copies them (parsing whole spans as JSON inside DuckDB
    took tens of MB of working memory per thousand spans)."""
    cols: dict[str, list[Any]] = {c: [] for c in (*_SPAN_TEXT, "start_time_unix_nano", "end_time_unix_nano",
                                                 *_SPAN_JSON, "scope", "source")}
    seen: set[tuple[str, str]] = set()
    for span in spans:
        d = _span_fields(span)
        tid, sid = _get(d, "trace_id"), _get(d, "span_id")
        if tid is None or sid is None or (str(tid), str(sid)) in seen:
            continue
        seen.add((str(tid), str(sid)))
        for c in _SPAN_TEXT:
            v = _get(d, c)
            cols[c].append(None if v is None or (v == "" and c == "parent_span_id") else str(v))
        cols["start_time_unix_nano"].append(_get(d, "start_time_unix_nano"))
        cols["end_time_unix_nano"].append(_get(d, "end_time_unix_nano"))
        for c, default in _SPAN_JSON.items():
            v = _get(d, c)
            cols[c].append(default if v is None else _json_text(v))
        scope, source = _get(d, "scope"), _get(d, "source")
        cols["scope"].append(None if scope is None else _json_text(scope))
        cols["source"].append(None if source is None else str(source))
    types = {c: pa.int64() if c.endswith("_nano") else pa.string() for c in cols}
    return pa.table({c: pa.array(v, types[c]) for c, v in cols.items()})


#: Rows for `spans` from `spans_table` (registered as ``{source}``).
SPANS_SELECT = """
    SELECT trace_id, span_id, parent_span_id, name, kind, start_time_unix_nano, end_time_unix_nano,
           to_timestamp(start_time_unix_nano / 1e9) AS start_time,
           (end_time_unix_nano - start_time_unix_nano) / 1e6 AS duration_ms,
           attributes::JSON AS attributes, events::JSON AS events, links::JSON AS links, status::JSON AS status,
           resource::JSON AS resource, scope::JSON AS scope, source
    FROM {source}
"""


# -- trajectories --------------------------------------------------------------------------------

def trajectory_tables(trajs: Sequence[Trajectory], now: datetime | None = None) -> dict[str, pa.Table]:
    """Arrow tables for `trajectories`, `messages`, `actions` and `contexts` (last occurrence of an
    id wins)."""
    now = now or datetime.now(timezone.utc)
    latest: dict[str, Trajectory] = {}
    for t in trajs:
        latest[t.id] = t
    tcols, mcols, acols, ccols = Columns("trajectories"), Columns("messages"), Columns("actions"), Columns("contexts")
    for traj in latest.values():
        traj = with_actions(traj)
        doc = traj.to_jsonl_line()
        meta = traj.metadata or {}
        trace_id = meta.get("trace_id") or meta.get("otel.trace_id")
        tcols.add(
            trajectory_id=traj.id, source=traj.source, trace_id=None if trace_id is None else str(trace_id),
            schema_version=traj.schema_version, content_sha256=hashlib.sha256(doc.encode("utf-8")).hexdigest(),
            n_messages=len(traj.messages), n_actions=len(traj.actions), content_captured=traj.content_captured,
            metadata=_json(meta), tools=_json([t.model_dump(mode="json") for t in traj.tools]), document=doc,
            ingested_at=now,
        )
        for i, m in enumerate(traj.messages):
            mcols.add(
                trajectory_id=traj.id, message_index=i, role=m.role, content=m.content, reasoning=m.reasoning,
                tool_calls=_json([c.model_dump(mode="json") for c in m.tool_calls]), tool_call_id=m.tool_call_id,
                name=m.name, metadata=_json(m.metadata),
            )
        for a in traj.actions:
            acols.add(
                trajectory_id=traj.id, action_id=a.id, step=a.step, kind=a.kind.value, tool_name=a.tool_name,
                tool_call_id=a.tool_call_id, arguments=_json(a.arguments), message_index=a.message_index,
                edit=_json(a.edit.model_dump(mode="json")) if a.edit else None, char_start=a.char_start,
                char_end=a.char_end, summary=a.summary, context_id=a.context_id,
            )
        for pos, c in enumerate(traj.contexts, 1):
            ccols.add(
                trajectory_id=traj.id, context_id=c.id, position=pos, n_messages=len(c.messages),
                messages=_json([m.model_dump(mode="json") for m in c.messages]),
                tools=None if c.tools is None else _json([t.model_dump(mode="json") for t in c.tools]),
                metadata=_json(c.metadata),
            )
    return {"trajectories": tcols.table(), "messages": mcols.table(), "actions": acols.table(),
            "contexts": ccols.table()}


# -- audits --------------------------------------------------------------------------------------

def run_table(audits: Sequence[TrajectoryAudit], now: datetime | None = None) -> pa.Table:
    """One row per distinct run id (the last audit's RunInfo wins)."""
    now = now or datetime.now(timezone.utc)
    runs = {a.run.run_id: a.run for a in audits}
    cols = Columns("runs")
    for r in runs.values():
        created = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=timezone.utc)
        cols.add(run_id=r.run_id, created_at=created, model=r.model, method=r.method, hops=r.hops,
                 auditor_version=r.auditor_version, device=r.device, dtype=r.dtype, settings=_json(r.settings),
                 recorded_at=now)
    return cols.table()


def audit_tables(audits: Sequence[TrajectoryAudit], now: datetime | None = None) -> dict[str, pa.Table]:
    """Arrow tables for everything a (run, trajectory) writes: audits, audit_contexts, segments,
    action_audits, attributions, action_arguments, argument_attributions, hop_flows, token_scores."""
    now = now or datetime.now(timezone.utc)
    out = {name: Columns(name) for name in AUDIT_TABLES}
    for au in audits:
        run_id, tid = au.run.run_id, au.trajectory.id
        doc = au.trajectory.to_jsonl_line()
        out["audits"].add(
            run_id=run_id, trajectory_id=tid, content_sha256=hashlib.sha256(doc.encode("utf-8")).hexdigest(),
            n_tokens=len(au.tokens), n_segments=len(au.segments), n_actions=len(au.actions), tokens=list(au.tokens),
            dropped=list(au.dropped), unplaced=list(au.unplaced), notes=list(getattr(au, "notes", None) or []),
            forward_seconds=au.forward_seconds,
            seconds=au.seconds, trajectory=doc, recorded_at=now, causal_seconds=au.causal_seconds,
        )
        for pos, s in enumerate(au.segments):
            p = s.provenance
            out["segments"].add(
                run_id=run_id, trajectory_id=tid, segment_id=s.id, kind=s.kind.value, label=s.label, text=s.text,
                message_index=p.message_index, field=p.field, tool_call_id=p.tool_call_id, tool_name=p.tool_name,
                path=p.path, char_start=p.char_start, char_end=p.char_end, action_id=s.action_id,
                token_start=s.token_start, token_end=s.token_end, position=pos, context_id=s.context_id,
            )
        for c in getattr(au, "contexts", None) or []:
            out["audit_contexts"].add(run_id=run_id, trajectory_id=tid, context_id=c.context_id, n_tokens=len(c.tokens),
                                      tokens=list(c.tokens), forward_seconds=c.forward_seconds,
                                      reused_tokens=c.reused_tokens)
        att = out["attributions"]
        for aa in au.actions:
            aid = aa.action.id
            out["action_audits"].add(
                run_id=run_id, trajectory_id=tid, action_id=aid, context_end=aa.context_end,
                output_start=aa.output_start, output_end=aa.output_end, n_drivers=len(aa.drivers),
                layer_shares=_json(aa.layer_shares) if aa.layer_shares else None, seconds=aa.seconds,
                causal=_json([c.model_dump(mode="json") for c in aa.causal]) if aa.causal else None,
                provenance=_json([provenance_doc(p) for p in aa.provenance]) if aa.provenance else None,
            )
            n = len(aa.drivers)
            if n:
                att.extend("run_id", [run_id] * n)
                att.extend("trajectory_id", [tid] * n)
                att.extend("action_id", [aid] * n)
                att.extend("segment_id", [d.segment_id for d in aa.drivers])
                att.extend("kind", [d.kind.value for d in aa.drivers])
                att.extend("label", [d.label for d in aa.drivers])
                att.extend("score", [d.score for d in aa.drivers])
                att.extend("share", [d.share for d in aa.drivers])
                att.extend("rank", [d.rank for d in aa.drivers])
                att.extend("hop", [0] * n)
            for pos, arg in enumerate(aa.arguments):
                out["action_arguments"].add(
                    run_id=run_id, trajectory_id=tid, action_id=aid, argument=arg.name, position=pos,
                    token_start=arg.token_start, token_end=arg.token_end, flow_ratio=arg.flow_ratio,
                    n_drivers=len(arg.drivers), scores=list(arg.token_scores) if arg.token_scores else None,
                    causal=_json([c.model_dump(mode="json") for c in arg.causal]) if arg.causal else None)
                for d in arg.drivers:
                    out["argument_attributions"].add(
                        run_id=run_id, trajectory_id=tid, action_id=aid, argument=arg.name, segment_id=d.segment_id,
                        kind=d.kind.value, label=d.label, score=d.score, share=d.share, rank=d.rank)
            for h in aa.hops:
                out["hop_flows"].add(run_id=run_id, trajectory_id=tid, action_id=aid, hop=h.hop,
                                     flow_ratio=h.flow_ratio, by_kind=_json(h.by_kind))
            out["token_scores"].add(run_id=run_id, trajectory_id=tid, action_id=aid,
                                    context_end=len(aa.token_scores), scores=list(aa.token_scores))
    return {name: c.table() for name, c in out.items()}


def provenance_doc(p: Any) -> dict[str, Any]:
    """An `ArgumentProvenance` as stored: its fields plus ``line``, the sentence `audit show` prints."""
    from auditor.provenance import describe

    return {**p.model_dump(mode="json"), "line": describe(p)}


# -- verdicts ------------------------------------------------------------------------------------

#: Where the check's verdicts go (written as JSON documents, see `verdict_docs`).
VERDICT_TABLE = "action_verdicts"


def _as_dict(obj: Any) -> dict[str, Any]:
    """A pydantic model (the check's `ActionVerdict`, a `Policy`) or a mapping, as a JSON-able dict."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, dict):
        return json.loads(json.dumps(obj, default=str))
    raise TypeError(f"expected a pydantic model or a dict, got {type(obj).__name__}")


def policy_fields(policy: Any, source: str | None = None) -> tuple[str | None, dict[str, Any] | None]:
    """(source, JSON form) of the policy that judged some verdicts: a `Policy` (its ``source``
    attribute names where it came from) or a mapping (an optional ``source`` key)."""
    if policy is None:
        return source, None
    data = _as_dict(policy)
    found = data.pop("source", None) if not hasattr(policy, "model_dump") else getattr(policy, "source", None)
    return source or found or None, data


def json_structure(columns: Sequence[tuple[str, str]]) -> str:
    """The `json_transform` structure for ``(name, DuckDB type)`` columns: ``X[]`` lists nest."""
    def typ(t: str) -> Any:
        return [typ(t[:-2])] if t.endswith("[]") else t

    return json.dumps({name: typ(t) for name, t in columns})


def verdict_docs(run_id: str, trajectory_id: str, verdicts: Iterable[Any], columns: Sequence[str], *,
                 policy_source: str | None = None, policy: dict[str, Any] | None = None,
                 now: datetime | None = None) -> pa.Table:
    """One JSON document per verdict with exactly ``columns`` as keys (the live columns of
    `action_verdicts`): each column takes the verdict's field of that name (None when it has none),
    ``details`` the whole verdict. So a column a migration adds is filled with no change here."""
    now = now or datetime.now(timezone.utc)
    docs = []
    for v in verdicts:
        data = _as_dict(v)
        row = {c: data.get(c) for c in columns}
        row.update(run_id=run_id, trajectory_id=trajectory_id, policy_source=policy_source, policy=policy,
                   details=data, recorded_at=now.isoformat())
        docs.append(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False, default=str))
    return pa.table({"doc": pa.array(docs, pa.string())})
