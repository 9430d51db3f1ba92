"""The OpenTelemetry GenAI semantic conventions: the current form (what `OpenAIInstrumentor`
writes) and the legacy one (content in span events, usage as prompt/completion tokens).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from auditor.collectors.conventions.base import ChatContent, Convention, Msg
from auditor.collectors.conventions.parsing import as_text, loads, messages_json

if TYPE_CHECKING:  # pragma: no cover
    from auditor.collectors.spans import SpanRecord

CHAT_OPERATIONS = {"chat", "text_completion", "generate_content", "completion"}


class GenAI(Convention):
    """Messages as JSON in ``gen_ai.input.messages`` / ``gen_ai.output.messages`` /
    ``gen_ai.system_instructions``, tools in ``gen_ai.tool.definitions``; the span kind in
    ``gen_ai.operation.name`` (``chat``, ``execute_tool``, ``invoke_agent``) or the span name."""

    name = "gen_ai"
    model_keys = ("gen_ai.request.model", "gen_ai.response.model")
    input_tokens_keys = ("gen_ai.usage.input_tokens",)
    output_tokens_keys = ("gen_ai.usage.output_tokens",)
    conversation_keys = ("gen_ai.conversation.id",)
    response_id_keys = ("gen_ai.response.id",)
    agent_name_keys = ("gen_ai.agent.name",)
    tool_name_keys = ("gen_ai.tool.name",)
    tool_call_id_keys = ("gen_ai.tool.call.id",)
    tool_arguments_keys = ("gen_ai.tool.call.arguments",)
    tool_result_keys = ("gen_ai.tool.call.result",)
    content_switches = (
        ("auditor.", "unset AUDITOR_CAPTURE_CONTENT (auditor's OpenAIInstrumentor captures content by default)"),
        # opentelemetry-instrumentation-openai-v2 records through opentelemetry-util-genai
        ("opentelemetry.util.genai", "set OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only (the official "
                                     "OpenAI instrumentation; 'true' is not accepted, 'event_only' writes log records, "
                                     "which auditor does not read)"),
        ("opentelemetry.instrumentation.openai_v2", "set OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only"),
    )

    def span_role(self, sp: "SpanRecord") -> str | None:
        a = sp.attributes
        op = str(a.get("gen_ai.operation.name", "")).lower()
        if op == "execute_tool" or sp.name.startswith("execute_tool"):
            return "tool"
        if op in ("invoke_agent", "create_agent"):
            return "agent"
        if op in CHAT_OPERATIONS or "gen_ai.input.messages" in a or "gen_ai.output.messages" in a:
            return "chat"
        if sp.name.startswith("chat ") and sp.kind == "CLIENT":
            return "chat"
        return None

    def messages(self, sp: "SpanRecord") -> ChatContent | None:
        a = sp.attributes
        if not ("gen_ai.input.messages" in a or "gen_ai.output.messages" in a or "gen_ai.system_instructions" in a):
            return None
        inputs = messages_json(a["gen_ai.input.messages"]) if "gen_ai.input.messages" in a else None
        outputs = messages_json(a["gen_ai.output.messages"]) if "gen_ai.output.messages" in a else None
        sys_raw = a.get("gen_ai.system_instructions")
        if sys_raw is not None:
            data = loads(sys_raw)
            text = ("".join(as_text(p.get("content")) for p in data if isinstance(p, Mapping))
                    if isinstance(data, list) else as_text(sys_raw))
            inputs = inputs or []
            if not any(m.role == "system" for m in inputs):
                inputs.insert(0, Msg("system", text))
        return ChatContent(inputs, outputs, self.name)

    def tool_definitions(self, attrs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        raw = attrs.get("gen_ai.tool.definitions")
        if raw is None:
            return []
        data = loads(raw)
        return [d for d in data if isinstance(d, Mapping)] if isinstance(data, list) else []


class GenAILegacy(Convention):
    """GenAI semantic conventions up to 1.26: the prompt and completion as JSON in
    ``gen_ai.content.prompt`` / ``gen_ai.content.completion`` span events, usage as
    ``gen_ai.usage.prompt_tokens`` / ``completion_tokens`` (which OpenLLMetry writes too)."""

    name = "gen_ai-events"
    input_tokens_keys = ("gen_ai.usage.prompt_tokens",)
    output_tokens_keys = ("gen_ai.usage.completion_tokens",)

    def fallback_messages(self, sp: "SpanRecord") -> ChatContent | None:
        found: ChatContent | None = None
        for ev in sp.events:
            ea = ev.get("attributes") or {}
            if ev.get("name") == "gen_ai.content.prompt" and "gen_ai.prompt" in ea:
                found = found or ChatContent(None, None, self.name)
                found.inputs = messages_json(ea["gen_ai.prompt"])
            elif ev.get("name") == "gen_ai.content.completion" and "gen_ai.completion" in ea:
                found = found or ChatContent(None, None, self.name)
                found.outputs = messages_json(ea["gen_ai.completion"])
        return found
