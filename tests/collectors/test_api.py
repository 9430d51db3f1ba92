"""The names other parts of auditor code against (pinned)."""

from __future__ import annotations

import inspect


def test_public_names_and_signatures():
    import auditor.collectors as c
    from auditor.collectors import aider, exporters, instrument, otlp_json, otlp_proto, receiver, sdk_spans, spans

    assert callable(c.load_file) and callable(c.assemble_trajectories)
    assert c.FORMATS == ("otlp-json", "otel-console", "aider-chat-history", "aider-llm-history")
    fields = set(spans.SpanRecord.model_fields)
    assert fields == {"trace_id", "span_id", "parent_span_id", "name", "kind", "start_time_unix_nano",
                      "end_time_unix_nano", "attributes", "events", "links", "status", "resource", "scope", "source"}
    for module, name in ((otlp_proto, "spans_from_otlp_proto"), (otlp_json, "spans_from_otlp_json"),
                         (sdk_spans, "spans_from_readable"), (sdk_spans, "span_from_console"),
                         (otlp_json, "to_otlp_json_line")):
        assert callable(getattr(module, name))
    params = inspect.signature(instrument.OpenAIInstrumentor).parameters
    assert list(params)[:2] == ["tracer_provider", "capture_content"] and params["capture_content"].default is True
    assert list(inspect.signature(instrument.tool_span).parameters)[:3] == ["name", "call_id", "arguments"]
    assert list(inspect.signature(instrument.agent_span).parameters)[:2] == ["name", "conversation_id"]
    assert callable(instrument.traced_tool)
    assert list(inspect.signature(exporters.setup_tracing).parameters)[:3] == ["jsonl", "otlp_endpoint", "headers"]
    assert list(inspect.signature(exporters.JsonlSpanExporter).parameters) == ["path"]
    rp = inspect.signature(receiver.OTLPReceiver).parameters
    assert list(rp)[:6] == ["host", "port", "jsonl_path", "sink", "token", "max_body_bytes"]
    assert rp["host"].default == "127.0.0.1" and rp["port"].default == 4318
    from auditor.collectors import grpc_receiver

    gp = inspect.signature(grpc_receiver.OTLPGrpcReceiver).parameters
    assert list(gp)[:6] == list(rp)[:6] and "writer" in gp and "writer" in rp
    assert gp["host"].default == "127.0.0.1" and gp["port"].default == 4317
    assert c.OTLPGrpcReceiver is grpc_receiver.OTLPGrpcReceiver
    assert callable(aider.load_chat_history) and callable(aider.load_llm_history)
    assert c.OpenAIInstrumentor is instrument.OpenAIInstrumentor  # lazy re-exports
