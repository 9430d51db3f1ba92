"""OpenInference (Arize Phoenix): messages flattened into ``llm.input_messages.{i}.message.*`` /
``llm.output_messages.{i}.message.*`` (or, failing that, the raw request in ``input.value``),
tools into ``llm.tools.{i}.tool.json_schema``; the span kind in ``openinference.span.kind``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from auditor.collectors.conventions.base import ChatContent, Convention, Msg
from auditor.collectors.conventions.parsing import as_text, indexed, loads, messages_json, norm_role

if TYPE_CHECKING:  # pragma: no cover
    from auditor.collectors.spans import SpanRecord

def _flattened(attrs: Mapping[str, Any], prefix: str) -> list[Msg] | None:
    items = indexed(attrs, prefix)
    if not items:
        return None
    out = []
    for _, d in items.items():
        content = d.get("message.content")
        if content is None:
            parts = indexed(d, "message.contents.")
            content = "".join(as_text(p.get("message_content.text")) for p in parts.values()
                              if p.get("message_content.type", "text") == "text")
        calls = [{"id": c.get("tool_call.id"), "name": c.get("tool_call.function.name"),
                  "arguments": c.get("tool_call.function.arguments")}
                 for c in indexed(d, "message.tool_calls.").values()]
        role = norm_role(d.get("message.role"))
        out.append(Msg(role, as_text(content), tool_calls=calls, tool_call_id=d.get("message.tool_call_id"),
                       name=d.get("message.name") if role == "tool" else None))
    return out


_ROLES = {"TOOL": "tool", "AGENT": "agent", "LLM": "chat"}  # openinference.span.kind -> role


def _kind(sp: "SpanRecord") -> str:
    return str(sp.attributes.get("openinference.span.kind", "")).upper()


class OpenInference(Convention):
    name = "openinference"
    chat_attribute_prefixes = ("llm.input_messages.", "llm.output_messages.")
    model_keys = ("llm.model_name",)
    input_tokens_keys = ("llm.token_count.prompt",)
    output_tokens_keys = ("llm.token_count.completion",)
    conversation_keys = ("session.id",)
    tool_name_keys = ("tool.name", "tool_call.function.name")
    tool_call_id_keys = ("tool_call.id", "tool.call.id")
    tool_arguments_keys = ("tool_call.function.arguments", "input.value")
    tool_result_keys = ("output.value",)

    def span_role(self, sp: "SpanRecord") -> str | None:
        return _ROLES.get(_kind(sp))

    def messages(self, sp: "SpanRecord") -> ChatContent | None:
        a = sp.attributes
        if not any(k.startswith(self.chat_attribute_prefixes) for k in a):
            return None
        return ChatContent(_flattened(a, "llm.input_messages."), _flattened(a, "llm.output_messages."), self.name)

    def fallback_messages(self, sp: "SpanRecord") -> ChatContent | None:
        """An LLM span without flattened messages: the request body in ``input.value``."""
        if _kind(sp) != "LLM" or "input.value" not in sp.attributes:
            return None
        inputs = messages_json(sp.attributes["input.value"])
        return ChatContent(inputs, None, self.name) if inputs else None

    def tool_definitions(self, attrs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        out = []
        for d in indexed(attrs, "llm.tools.").values():
            schema = loads(d.get("tool.json_schema"))
            if isinstance(schema, Mapping):
                out.append(dict(schema))
        return out
