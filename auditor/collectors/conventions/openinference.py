"""OpenInference (Arize Phoenix): messages flattened into ``llm.input_messages.{i}.message.*`` /
``llm.output_messages.{i}.message.*`` (or, failing that, the raw request in ``input.value``),
tools into ``llm.tools.{i}.tool.json_schema``; the span kind in ``openinference.span.kind``.

What `openinference-instrumentation-openai` (0.1.66) leaves out of the flattened messages is
read from the raw response it keeps in ``output.value``: the response id (which vLLM's
``llm_request`` span names), and for chat completions each choice's ``reasoning_content`` and
finish reason. A Responses API span (named ``Response``) writes one output message per output
item (reasoning, text, each function call): consecutive assistant messages are merged back into
the one turn they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from auditor.collectors.conventions.base import ChatContent, Convention, Msg
from auditor.collectors.conventions.parsing import (as_text, indexed, loads, merge_assistant_turns, messages_json,
                                                    norm_role)

if TYPE_CHECKING:  # pragma: no cover
    from auditor.collectors.spans import SpanRecord

def _flattened(attrs: Mapping[str, Any], prefix: str) -> list[Msg] | None:
    items = indexed(attrs, prefix)
    if not items:
        return None
    out = []
    for _, d in items.items():
        content = d.get("message.content")
        parts = indexed(d, "message.contents.")
        if content is None:
            content = "".join(as_text(p.get("message_content.text")) for p in parts.values()
                              if p.get("message_content.type", "text") == "text")
        reasoning = "".join(as_text(p.get("message_content.text")) for p in parts.values()
                            if p.get("message_content.type") == "reasoning")
        calls = [{"id": c.get("tool_call.id"), "name": c.get("tool_call.function.name"),
                  "arguments": c.get("tool_call.function.arguments")}
                 for c in indexed(d, "message.tool_calls.").values()]
        role = norm_role(d.get("message.role"))
        out.append(Msg(role, as_text(content), reasoning=reasoning or None, tool_calls=calls,
                       tool_call_id=d.get("message.tool_call_id"), name=d.get("message.name") if role == "tool" else None))
    return out


_ROLES = {"TOOL": "tool", "AGENT": "agent", "LLM": "chat"}  # openinference.span.kind -> role


def _kind(sp: "SpanRecord") -> str:
    return str(sp.attributes.get("openinference.span.kind", "")).upper()


def _raw_output(sp: "SpanRecord") -> Mapping[str, Any] | None:
    """The response object an LLM span keeps in ``output.value`` (JSON), if any."""
    if _kind(sp) != "LLM":
        return None
    data = loads(sp.attributes.get("output.value"))
    return data if isinstance(data, Mapping) else None


def _is_responses(sp: "SpanRecord", raw: Mapping[str, Any] | None) -> bool:
    return sp.name == "Response" or (raw is not None and raw.get("object") == "response")


def _from_choices(outputs: list[Msg], raw: Mapping[str, Any]) -> None:
    """Reasoning and finish reason of each chat completion choice, which the flattened
    messages do not hold."""
    choices = raw.get("choices")
    if not isinstance(choices, list):
        return
    for pos, choice in enumerate(choices):
        if not isinstance(choice, Mapping):
            continue
        i = choice.get("index", pos)
        if not isinstance(i, int) or not 0 <= i < len(outputs):
            continue
        msg = choice.get("message") if isinstance(choice.get("message"), Mapping) else {}
        reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        if reasoning and not outputs[i].reasoning:
            outputs[i].reasoning = as_text(reasoning)
        if choice.get("finish_reason") and not outputs[i].finish_reason:
            outputs[i].finish_reason = str(choice["finish_reason"])


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
    content_switches = (("openinference.", "unset OPENINFERENCE_HIDE_INPUTS / OPENINFERENCE_HIDE_OUTPUTS "
                                           "(and the finer OPENINFERENCE_HIDE_* switches)"),)

    def span_role(self, sp: "SpanRecord") -> str | None:
        return _ROLES.get(_kind(sp))

    def response_id(self, sp: "SpanRecord") -> str | None:
        raw = _raw_output(sp)
        rid = raw.get("id") if raw is not None else None
        return str(rid) if rid not in (None, "") else None

    def messages(self, sp: "SpanRecord") -> ChatContent | None:
        a = sp.attributes
        if not any(k.startswith(self.chat_attribute_prefixes) for k in a):
            return None
        inputs, outputs = _flattened(a, "llm.input_messages."), _flattened(a, "llm.output_messages.")
        raw = _raw_output(sp)
        if _is_responses(sp, raw):
            inputs, outputs = merge_assistant_turns(inputs), merge_assistant_turns(outputs)
        elif outputs and raw is not None:
            _from_choices(outputs, raw)
        if outputs and len(outputs) == 1 and not outputs[0].finish_reason and a.get("llm.finish_reason"):
            outputs[0].finish_reason = str(a["llm.finish_reason"])
        return ChatContent(inputs, outputs, self.name)

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
