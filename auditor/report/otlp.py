"""Verdicts back to the tracing backend: each audited action's judgement, as an OTLP span joined to
the agent's own trace, for Phoenix, Langfuse, Jaeger or any OTLP endpoint.

Where it lives and why: here, in `auditor.report`, because it is one more rendering of what
`audit show` and the HTML report render (the action export's judgement, drivers and arguments,
`auditor.report.export`), read by another viewer; it needs the store and the check, which
`auditor.collectors` (the layer that reads spans in) must not import.

One evaluation per audited action (`evaluations`), following the OpenTelemetry GenAI semantic
conventions' evaluation result (``gen_ai.evaluation.result``):

- ``gen_ai.evaluation.name`` = ``auditor.support``; ``gen_ai.evaluation.score.value`` = the judged
  support (authority / (authority + data), 0..1, of the decisive argument the verdict rests on,
  else of the whole call; absent when the policy ignores the action); ``gen_ai.evaluation.score.label``
  = `audit check`'s status: ``passed``, ``failed`` or ``ignored``; ``gen_ai.evaluation.explanation``
  = the verdict in words and its top drivers, each with its quote (the segment's hottest words);
  ``gen_ai.response.id`` = the response vLLM served, when its span was joined.
- ``auditor.*`` for what the conventions do not cover (`AUDITOR_ATTRIBUTES` documents each): the
  action, the verdict's numbers and rules, the drivers, and per argument its support, whether the
  policy judges by it, and its provenance (where its value occurs in the context: authority,
  data, tool definition, generated, nowhere).

`send_otlp` sends them as spans named ``evaluation auditor.support`` with the same trace id as the
action and the action's span as parent: for a tool call its ``execute_tool`` span when one was
recorded, else the chat span whose reply requested it; for a final answer or an edit the chat span
that wrote it. Each carries the attributes above and one span event ``gen_ai.evaluation.result``
with the ``gen_ai.evaluation.*`` ones. The conventions define the evaluation as an event parented
to the span evaluated; sent as a span event of a child span it reaches backends that accept only
traces (Phoenix, Jaeger) and keeps the trace tree. It is timed at the end of the run (the audit's
own time would stretch the trace). Actions of trajectories not assembled from spans (trajectory
JSONL, Aider logs) have no span to join and are left out, with a note. Phoenix's span annotations
(the verdict on the action's own span) are `auditor.report.phoenix`.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from pydantic import BaseModel, Field

from auditor.audit.schema import ActionAttribution, TrajectoryAudit
from auditor.check.findings import quote_segment
from auditor.check.policy import Policy, default_policy
from auditor.provenance import describe, provenance_of
from auditor.report.export import argument_exports, judgement, recorded_policy
from auditor.trajectory import ActionKind, Trajectory

if TYPE_CHECKING:  # pragma: no cover
    from auditor.store.store import Store

EVALUATION_NAME = "auditor.support"
EVENT_NAME = "gen_ai.evaluation.result"
SPAN_NAME = f"evaluation {EVALUATION_NAME}"
SCOPE = "auditor.report.otlp"
TOP_DRIVERS = 3

#: The ``auditor.*`` attributes of an evaluation span (the ``gen_ai.evaluation.*`` ones are the
#: conventions'). Also in docs/tracing-stack.md.
AUDITOR_ATTRIBUTES: dict[str, str] = {
    "auditor.run.id": "The audit run (see `audit runs`).",
    "auditor.trajectory.id": "The trajectory the action is in.",
    "auditor.action.id": "The action (`audit show ID`).",
    "auditor.action.kind": "tool_call, final_answer or code_edit.",
    "auditor.action.tool_name": "The tool called (tool calls).",
    "auditor.action.tool_call_id": "The call's id (tool calls).",
    "auditor.verdict.rules": "The check's rules that fired (low-support, data-top-driver, data-driven-reasoning).",
    "auditor.support.argument": "The decisive argument the judged support is of (absent: the whole call).",
    "auditor.support.call": "The whole call's support (absent without authority or data mass).",
    "auditor.support.threshold": "The least support the policy asks of this tool.",
    "auditor.share.authority": "Share of the judged drivers' mass on authority segments (system, user).",
    "auditor.share.data": "Share on data segments (tool outputs, files).",
    "auditor.policy": "Where the judging policy came from (default, or the policy file).",
    "auditor.drivers": "JSON list of the top drivers judged: rank, kind, label, share, quote.",
    "auditor.arguments": "JSON list, per explained argument: name, value, support, decisive, provenance "
                         "(source: authority, data, tool_definition, other, generated, nowhere) and its line.",
    "auditor.argument.<name>.support": "That argument's support.",
    "auditor.argument.<name>.source": "That argument's provenance class.",
    "auditor.span.chat": "The chat span whose reply holds the action.",
    "auditor.span.tool": "The tool span that ran the call, when one was recorded.",
}


class Evaluation(BaseModel):
    """One action's verdict, addressed to the span it evaluates."""

    run_id: str
    trajectory_id: str
    action_id: str
    trace_id: str  # 32 hex
    span_id: str  # 16 hex: the span evaluated (the parent of the evaluation span)
    time_unix_nano: int
    label: str
    score: float | None = None
    explanation: str
    attributes: dict[str, Any] = Field(default_factory=dict)

    def event_attributes(self) -> dict[str, Any]:
        """The ``gen_ai.evaluation.*`` attributes (and ``gen_ai.response.id``) of the event."""
        return {k: v for k, v in self.attributes.items() if k.startswith(("gen_ai.evaluation.", "gen_ai.response."))}


class ExportError(RuntimeError):
    """The endpoint did not accept the export; the message names it and says why."""


def _span_of(traj: Trajectory, att: ActionAttribution) -> tuple[str | None, str | None, str | None]:
    """(trace id, chat span id, tool span id) of the action, from the assembled messages' metadata."""
    a = att.action
    default_trace = traj.metadata.get("trace_id")
    if not 0 <= a.message_index < len(traj.messages):
        return None, None, None
    chat = traj.messages[a.message_index].metadata
    trace = chat.get("trace_id") or default_trace
    tool_span = tool_trace = None
    if a.kind is ActionKind.tool_call and a.tool_call_id:
        result = next((m for m in traj.messages if m.role == "tool" and m.tool_call_id == a.tool_call_id), None)
        if result is not None and result.metadata.get("span_id"):
            tool_span = str(result.metadata["span_id"])
            tool_trace = result.metadata.get("trace_id") or default_trace
    chat_span = str(chat["span_id"]) if chat.get("span_id") else None
    if tool_span is not None and tool_trace:
        return str(tool_trace), chat_span, tool_span
    return (str(trace) if trace else None), chat_span, None


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def explanation(j: Mapping[str, Any], drivers: Sequence[Mapping[str, Any]]) -> str:
    """The verdict in words, then its top drivers with their quotes."""
    if j["status"] == "ignored":
        head = "ignored: the policy does not judge this action"
    else:
        of = f"its argument {j['argument']!r}" if j.get("argument") else "the call"
        head = (f"{j['status']}: support {j['support']:.2f} of {of} (threshold {j['threshold']:.2f}; "
                f"authority {_pct(j['authority_share'])}, data {_pct(j['data_share'])})")
        if j.get("rules"):
            head += f"; rules: {', '.join(j['rules'])}"
    parts = [f"{d['rank']}. {d['label']} [{d['kind']}] {_pct(d['share'])}: \u201c{d['quote']}\u201d" for d in drivers]
    return head + (". Top drivers: " + "; ".join(parts) if parts else "")


def _drivers(audit: TrajectoryAudit, att: ActionAttribution, argument: str | None, top: int) -> list[dict[str, Any]]:
    """The top drivers the verdict was judged on (the argument's, else the call's), with quotes."""
    pool = att.drivers
    if argument:
        arg = next((g for g in att.arguments if g.name == argument), None)
        if arg is not None and arg.drivers:
            pool = arg.drivers
    ranked = sorted(pool, key=lambda d: (d.rank, -d.share))[:top]
    return [{"rank": d.rank, "kind": d.kind.value, "label": d.label, "share": round(d.share, 4),
             "quote": quote_segment(audit, att, d.segment_id, argument)} for d in ranked]


def _arguments(audit: TrajectoryAudit, att: ActionAttribution, policy: Policy) -> list[dict[str, Any]]:
    """Per argument of the action: where its value occurs (provenance, every argument) and, when
    the audit explained it, its support and whether the policy judges the action by it."""
    explained = {g["name"]: g for g in argument_exports(audit, att, top=1, policy=policy)}
    out = []
    for p in provenance_of(att.action, audit.segments, authority_kinds=policy.authority_kinds,
                           data_kinds=policy.data_kinds):
        g = explained.pop(p.name, None) or {}
        out.append({"name": p.name, "value": g.get("value", p.value), "support": g.get("support"),
                    "decisive": g.get("decisive"), "source": p.source, "provenance": describe(p)})
    out.extend({"name": g["name"], "value": g["value"], "support": g["support"], "decisive": g["decisive"],
                "source": None, "provenance": None} for g in explained.values())
    return out


def evaluations(audit: TrajectoryAudit, policy: Policy | None = None, top: int = TOP_DRIVERS
                ) -> tuple[list[Evaluation], list[str]]:
    """One `Evaluation` per explained action of ``audit`` judged by ``policy`` (default: the
    shipped one), and a note per action left out (no span to join)."""
    policy = policy or default_policy()
    traj = audit.trajectory
    end = traj.metadata.get("end_time_unix_nano")
    when = int(end) if isinstance(end, int) and end > 0 else time.time_ns()
    out: list[Evaluation] = []
    notes: list[str] = []
    for att in audit.actions:
        a = att.action
        trace, chat_span, tool_span = _span_of(traj, att)
        target = tool_span or chat_span
        if not trace or not target:
            notes.append(f"{traj.id} {a.id}: no span to join (the trajectory was not assembled from spans)")
            continue
        j = judgement(att, audit, policy)
        drivers = _drivers(audit, att, j["argument"], top)
        arguments = _arguments(audit, att, policy)
        text = explanation(j, drivers)
        attrs: dict[str, Any] = {
            "gen_ai.evaluation.name": EVALUATION_NAME,
            "gen_ai.evaluation.score.label": j["status"],
            "gen_ai.evaluation.explanation": text,
            "auditor.run.id": audit.run.run_id,
            "auditor.trajectory.id": traj.id,
            "auditor.action.id": a.id,
            "auditor.action.kind": a.kind.value,
            "auditor.verdict.rules": list(j["rules"]),
            "auditor.share.authority": float(j["authority_share"]),
            "auditor.share.data": float(j["data_share"]),
            "auditor.support.threshold": float(j["threshold"]),
            "auditor.policy": str(j["policy"]),
            "auditor.drivers": json.dumps(drivers, ensure_ascii=False),
            "auditor.arguments": json.dumps(arguments, ensure_ascii=False, default=str),
            "auditor.span.chat": chat_span,
        }
        score = None if j["status"] == "ignored" else float(j["support"])
        if score is not None:
            attrs["gen_ai.evaluation.score.value"] = score
        request = (traj.messages[a.message_index].metadata.get("llm_request") or {}).get("request_id")
        if request:
            attrs["gen_ai.response.id"] = str(request)
        optional = {"auditor.action.tool_name": a.tool_name, "auditor.action.tool_call_id": a.tool_call_id,
                    "auditor.support.argument": j["argument"], "auditor.support.call": j["action_support"],
                    "auditor.span.tool": tool_span}
        attrs.update({k: v for k, v in optional.items() if v is not None})
        for g in arguments:
            if g["support"] is not None:
                attrs[f"auditor.argument.{g['name']}.support"] = float(g["support"])
            if g["source"] is not None:
                attrs[f"auditor.argument.{g['name']}.source"] = g["source"]
        out.append(Evaluation(run_id=audit.run.run_id, trajectory_id=traj.id, action_id=a.id, trace_id=str(trace),
                              span_id=target, time_unix_nano=when, label=j["status"], score=score, explanation=text,
                              attributes={k: v for k, v in attrs.items() if v is not None}))
    return out, notes


def store_evaluations(store: "Store", run_id: str | None = None, trajectory_ids: Sequence[str] | None = None,
                      policy: Policy | None = None, top: int = TOP_DRIVERS) -> tuple[str, list[Evaluation], list[str]]:
    """The evaluations of a stored run (default: the newest), each trajectory judged by ``policy``,
    else the policy recorded with its verdicts, else the shipped one: (run id, evaluations, notes)."""
    from auditor.store.errors import NotFound

    if run_id is None:
        runs = store.runs(limit=1)
        if not runs:
            raise NotFound("the database holds no audit run: run `audit trace` first")
        run_id = str(runs[0]["run_id"])
    wanted = list(trajectory_ids) if trajectory_ids else sorted(store.audited(run_id))
    if not wanted:
        raise NotFound(f"run {run_id!r} has no audited trajectory")
    out: list[Evaluation] = []
    notes: list[str] = []
    for tid in wanted:
        audit = store.load_audit(run_id, tid)
        evals, left = evaluations(audit, policy or recorded_policy(store, run_id, tid), top)
        out.extend(evals)
        notes.extend(left)
    return run_id, out, notes


def evaluation_spans(evals: Sequence[Evaluation], service_name: str = "auditor") -> list[Any]:
    """The evaluations as finished OpenTelemetry SDK spans (``ReadableSpan``), each a child of the
    span it evaluates, in that span's trace."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

    from auditor._version import __version__

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(SCOPE, __version__)
    for e in evals:
        parent = SpanContext(trace_id=int(e.trace_id, 16), span_id=int(e.span_id, 16), is_remote=True,
                             trace_flags=TraceFlags(TraceFlags.SAMPLED))
        span = tracer.start_span(SPAN_NAME, context=trace.set_span_in_context(NonRecordingSpan(parent)),
                                 kind=SpanKind.INTERNAL, start_time=e.time_unix_nano, attributes=e.attributes)
        span.add_event(EVENT_NAME, attributes=e.event_attributes(), timestamp=e.time_unix_nano)
        span.end(end_time=e.time_unix_nano)
    provider.shutdown()
    return list(memory.get_finished_spans())


def traces_url(endpoint: str) -> str:
    """An OTLP base URL -> its traces URL, as the SDK's ``OTEL_EXPORTER_OTLP_ENDPOINT`` reads it:
    ``http://host:4318`` -> ``http://host:4318/v1/traces``, Langfuse's ``.../api/public/otel`` ->
    ``.../api/public/otel/v1/traces``; a URL already ending in ``/v1/traces`` is kept."""
    url = endpoint.rstrip("/")
    return url if url.endswith("/v1/traces") else url + "/v1/traces"


def send_otlp(evals: Sequence[Evaluation], endpoint: str, headers: Mapping[str, str] | None = None,
              timeout: float = 10.0, service_name: str = "auditor") -> int:
    """Send the evaluations to an OTLP/HTTP traces endpoint (protobuf); returns how many were sent.
    Raises `ExportError` when the endpoint does not accept them."""
    if not evals:
        return 0
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    url = traces_url(endpoint)
    exporter = OTLPSpanExporter(endpoint=url, headers=dict(headers or {}), timeout=timeout)
    try:
        result = exporter.export(evaluation_spans(evals, service_name))
    finally:
        exporter.shutdown()
    if result is not SpanExportResult.SUCCESS:
        raise ExportError(f"{url} did not accept the {len(evals)} evaluation span(s) (see the log above for the "
                          "status it answered; is it an OTLP/HTTP traces endpoint taking protobuf?)")
    return len(evals)
