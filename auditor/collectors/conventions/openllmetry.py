"""OpenLLMetry (Traceloop): messages flattened into ``gen_ai.prompt.{i}.*`` /
``gen_ai.completion.{i}.*`` attributes, tools into ``llm.request.functions.{i}.*``; span kinds in
``traceloop.span.kind`` and ``llm.request.type``, names and values of workflow/task/tool spans in
``traceloop.entity.*``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from auditor.collectors.conventions.base import ChatContent, Convention, Msg
from auditor.collectors.conventions.parsing import indexed, loads, norm_role, openai_content

if TYPE_CHECKING:  # pragma: no cover
    from auditor.collectors.spans import SpanRecord

def _flattened(attrs: Mapping[str, Any], prefix: str) -> list[Msg] | None:
    items = indexed(attrs, prefix)
    if not items:
        return None
    out = []
    for _, d in items.items():
        calls = [{"id": c.get("id"), "name": c.get("name"), "arguments": c.get("arguments")}
                 for c in indexed(d, "tool_calls.").values()]
        if not calls and d.get("function_call.name"):
            calls = [{"id": None, "name": d["function_call.name"], "arguments": d.get("function_call.arguments")}]
        role = norm_role(d.get("role", "assistant" if prefix.startswith("gen_ai.completion") else "user"))
        out.append(Msg(role, openai_content(d.get("content")), tool_calls=calls,
                       tool_call_id=d.get("tool_call_id"), name=d.get("name") if role == "tool" else None,
                       finish_reason=d.get("finish_reason"), reasoning=d.get("reasoning") or None))
    return out


class OpenLLMetry(Convention):
    name = "openllmetry"
    chat_attribute_prefixes = ("gen_ai.prompt.", "gen_ai.completion.")
    model_keys = ("llm.request.model",)
    input_tokens_keys = ("llm.usage.prompt_tokens",)
    output_tokens_keys = ("llm.usage.completion_tokens",)
    agent_name_keys = ("traceloop.entity.name",)
    tool_name_keys = ("traceloop.entity.name",)
    tool_arguments_keys = ("traceloop.entity.input",)
    tool_result_keys = ("traceloop.entity.output",)

    def span_role(self, sp: "SpanRecord") -> str | None:
        a = sp.attributes
        kind = str(a.get("traceloop.span.kind", "")).lower()
        if kind == "tool":
            return "tool"
        if kind in ("agent", "workflow"):
            return "agent"
        if str(a.get("llm.request.type", "")).lower() in ("chat", "completion"):
            return "chat"
        return None

    def messages(self, sp: "SpanRecord") -> ChatContent | None:
        a = sp.attributes
        if not any(k.startswith(self.chat_attribute_prefixes) for k in a):
            return None
        return ChatContent(_flattened(a, "gen_ai.prompt."), _flattened(a, "gen_ai.completion."), self.name)

    def tool_definitions(self, attrs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return [{"name": d.get("name"), "description": d.get("description"),
                 "parameters": loads(d.get("parameters")) or {}}
                for d in indexed(attrs, "llm.request.functions.").values()]
