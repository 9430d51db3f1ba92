"""`auditor.report.otlp.evaluations` on an audit whose arguments are explained: each argument's
support is the one `audit show` lists, and the judged argument's drivers are the ones quoted."""

from __future__ import annotations

import json

import openai

from auditor.collectors import assemble_trajectories
from auditor.collectors.instrument import OpenAIInstrumentor
from auditor.collectors.sdk_spans import spans_from_readable
from auditor.report.export import argument_exports, judgement
from auditor.report.otlp import evaluation_spans, evaluations
from auditor.testing.audits import synthetic_audit
from helpers.fake_openai import FakeOpenAI
from helpers.interop_agent import Wrappers, chat_agent, fake_script
from helpers.tracing import in_memory_tracing


def _audit():
    with in_memory_tracing() as (provider, exporter):
        inst = OpenAIInstrumentor(tracer_provider=provider).instrument()
        try:
            with FakeOpenAI(fake_script) as srv:
                chat_agent(openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0), Wrappers(False, None),
                           "smollm2", stream=False)
        finally:
            inst.uninstrument()
        finished = exporter.get_finished_spans()
    (traj,), _ = assemble_trajectories(spans_from_readable(finished))
    return synthetic_audit(traj, arguments=True)


def test_argument_supports_and_the_judged_drivers():
    audit = _audit()
    evals, notes = evaluations(audit)
    assert notes == [] and len(evals) == len(audit.actions) == 3
    for e, att in zip(evals, audit.actions):
        a = e.attributes
        args = json.loads(a["auditor.arguments"])
        shown = {g["name"]: g for g in argument_exports(audit, att)}
        assert [g["name"] for g in args] == list(att.action.arguments)
        for g in args:
            assert g["support"] == shown[g["name"]]["support"] and g["decisive"] == shown[g["name"]]["decisive"]
            assert a[f"auditor.argument.{g['name']}.support"] == g["support"]
            assert a[f"auditor.argument.{g['name']}.source"] == g["source"]
        j = judgement(att, audit)
        assert e.label == j["status"] and a.get("auditor.support.argument") == j["argument"]
        # stitched run: each evaluation in the trace of the call it evaluates
        assert e.trace_id == audit.trajectory.messages[att.action.message_index].metadata["trace_id"]
    (span, *_), = [evaluation_spans(evals)]
    assert format(span.context.trace_id, "032x") == evals[0].trace_id
    assert format(span.parent.span_id, "016x") == evals[0].span_id and span.parent.is_remote
