"""OpenLLMetry (Traceloop), in its two forms.

Releases before the GenAI JSON attributes (`OpenLLMetry`): messages flattened into
``gen_ai.prompt.{i}.*`` / ``gen_ai.completion.{i}.*`` attributes, tools into
``llm.request.functions.{i}.*``; span kinds in ``traceloop.span.kind`` and ``llm.request.type``,
names and values of workflow/task/tool spans in ``traceloop.entity.*``.

Current releases (`OpenLLMetryGenAI`; tested: ``opentelemetry-instrumentation-openai`` 0.62.4,
scope ``opentelemetry.instrumentation.openai.v1``) write the GenAI JSON attributes, read as
`genai.GenAI` reads them, with three things set right: a reasoning part's content is the JSON
of the Responses ``summary`` list (its texts are joined), a Responses API span
(``openai.response``) writes each item sent back as history as its own assistant message (they
are merged into the turn they are), and the finish reason is the GenAI enum (``tool_call``,
read as OpenAI's ``tool_calls``). Its Responses spans name a function call by the item id
(``fc_...``), not the ``call_id`` the tool results answer; the assembly re-keys those
(`auditor.collectors.assemble`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from auditor.collectors.conventions.base import ChatContent, Convention, Msg
from auditor.collectors.conventions.genai import GenAI
from auditor.collectors.conventions.parsing import (indexed, loads, merge_assistant_turns, norm_role, openai_content,
                                                    summary_text)

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
    content_switches = (("opentelemetry.instrumentation.openai.", "set TRACELOOP_TRACE_CONTENT=true"),)
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


SCOPE_PREFIX = "opentelemetry.instrumentation.openai."  # .v0 / .v1; the official one is ...openai_v2
_FINISH = {"tool_call": "tool_calls"}  # GenAI's finish reason enum -> OpenAI's


class OpenLLMetryGenAI(Convention):
    """OpenLLMetry spans that carry the GenAI JSON message attributes (see the module docstring)."""

    name = "openllmetry"
    _genai = GenAI()

    def messages(self, sp: "SpanRecord") -> ChatContent | None:
        if not (sp.scope or "").startswith(SCOPE_PREFIX):
            return None
        found = self._genai.messages(sp)
        if found is None:
            return None
        inputs, outputs = found.inputs, found.outputs
        for m in (inputs or []) + (outputs or []):
            if m.reasoning:
                m.reasoning = summary_text(m.reasoning)
            if m.finish_reason:
                m.finish_reason = _FINISH.get(m.finish_reason, m.finish_reason)
        if sp.name == "openai.response":
            inputs, outputs = merge_assistant_turns(inputs), merge_assistant_turns(outputs)
        return ChatContent(inputs, outputs, self.name)
