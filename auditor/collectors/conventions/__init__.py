"""How instrumentation libraries record agent runs on spans, one module per library:
`genai` (OpenTelemetry GenAI, current and legacy; what auditor's own instrumentor and the
official ``opentelemetry-instrumentation-openai-v2`` write), `openinference`, `openllmetry`
(both its forms), and `vllm` (its ``llm_request`` spans). Each fills in the `Convention` interface (`base`); this module asks
them all. To support another library: write its `Convention` and add it to both orders below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from auditor.trajectory import ToolDefinition

from auditor.collectors.conventions.base import ROLES, ChatContent, Convention, Msg
from auditor.collectors.conventions.genai import GenAI, GenAILegacy
from auditor.collectors.conventions.openinference import OpenInference
from auditor.collectors.conventions.openllmetry import OpenLLMetry, OpenLLMetryGenAI
from auditor.collectors.conventions.parsing import loads
from auditor.collectors.conventions.vllm import VLLM

if TYPE_CHECKING:  # pragma: no cover
    from auditor.collectors.spans import SpanRecord

_GENAI, _LEGACY, _OPENINFERENCE, _OPENLLMETRY, _VLLM = GenAI(), GenAILegacy(), OpenInference(), OpenLLMetry(), VLLM()
_OPENLLMETRY_GENAI = OpenLLMetryGenAI()  # claims only OpenLLMetry's own spans (by scope), before GenAI reads them

# Every convention; attribute names (model, usage, tool call fields, conversation, agent name,
# response id) are looked up in this order.
CONVENTIONS: tuple[Convention, ...] = (_VLLM, _GENAI, _LEGACY, _OPENINFERENCE, _OPENLLMETRY, _OPENLLMETRY_GENAI)
# The order a chat span's messages and tool definitions are looked for in. A span normally follows
# one convention: the two orders only decide which wins when one span carries several.
CONTENT_ORDER: tuple[Convention, ...] = (_OPENLLMETRY_GENAI, _GENAI, _LEGACY, _OPENLLMETRY, _OPENINFERENCE, _VLLM)


def _keys(field: str) -> tuple[str, ...]:
    return tuple(k for c in CONVENTIONS for k in getattr(c, field))


MODEL_KEYS = _keys("model_keys")
INPUT_TOKENS_KEYS = _keys("input_tokens_keys")
OUTPUT_TOKENS_KEYS = _keys("output_tokens_keys")
CONVERSATION_KEYS = _keys("conversation_keys")
AGENT_NAME_KEYS = _keys("agent_name_keys")
TOOL_NAME_KEYS = _keys("tool_name_keys")
TOOL_CALL_ID_KEYS = _keys("tool_call_id_keys")
TOOL_ARGUMENTS_KEYS = _keys("tool_arguments_keys")
TOOL_RESULT_KEYS = _keys("tool_result_keys")
_CHAT_PREFIXES = _keys("chat_attribute_prefixes")
_ROLE_READERS = tuple(c.span_role for c in CONVENTIONS if type(c).span_role is not Convention.span_role)
_STRENGTH = {role: i for i, role in enumerate(ROLES)}


def span_role(sp: "SpanRecord") -> str | None:
    """"llm_request", "tool", "agent", "chat" or None (a span the assembly does not use)."""
    best: str | None = None
    for read in _ROLE_READERS:
        role = read(sp)
        if role is not None:
            if role == ROLES[0]:
                return role
            if best is None or _STRENGTH[role] < _STRENGTH[best]:
                best = role
    if best is None and any(k.startswith(_CHAT_PREFIXES) for k in sp.attributes):
        return "chat"
    return best


def chat_content(sp: "SpanRecord") -> ChatContent:
    """A chat span's input/output messages, in whatever convention it records them."""
    for c in CONTENT_ORDER:
        found = c.messages(sp)
        if found is not None:
            return found
    for c in CONTENT_ORDER:
        found = c.fallback_messages(sp)
        if found is not None:
            return found
    return ChatContent(None, None)


def tool_definitions(a: Mapping[str, Any]) -> list[ToolDefinition] | None:
    """The tools a chat span offered the model, from the first convention that records them."""
    defs: list[Mapping[str, Any]] = []
    for c in CONTENT_ORDER:
        defs = c.tool_definitions(a)
        if defs:
            break
    out = []
    for d in defs:
        fn = d.get("function") if isinstance(d.get("function"), Mapping) else d
        name = fn.get("name")
        if not name:
            continue
        params = fn.get("parameters")
        params = loads(params) if isinstance(params, str) else params
        out.append(ToolDefinition(name=str(name), description=str(fn.get("description") or ""),
                                  parameters=params if isinstance(params, dict) else {}))
    return out or None


def first(a: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    """The first of ``keys`` with a non-empty value."""
    for k in keys:
        v = a.get(k)
        if v not in (None, ""):
            return v
    return None


def model_of(sp: "SpanRecord") -> str | None:
    v = first(sp.attributes, MODEL_KEYS)
    return str(v) if v is not None else None


def usage_of(sp: "SpanRecord") -> dict[str, int]:
    out = {}
    for k, keys in (("input_tokens", INPUT_TOKENS_KEYS), ("output_tokens", OUTPUT_TOKENS_KEYS)):
        v = first(sp.attributes, keys)
        try:
            if v is not None:
                out[k] = int(v)
        except (TypeError, ValueError, OverflowError):  # not a count (text, NaN, infinity): left out
            pass
    return out


def tool_info(sp: "SpanRecord") -> dict[str, Any]:
    """A tool span's call id, tool name, arguments and result."""
    a = sp.attributes
    name = first(a, TOOL_NAME_KEYS)
    if name is None and sp.name.startswith("execute_tool "):  # GenAI span name
        name = sp.name[len("execute_tool "):]
    return {
        "call_id": first(a, TOOL_CALL_ID_KEYS),
        "name": str(name or sp.name or "tool"),
        "arguments": first(a, TOOL_ARGUMENTS_KEYS),
        "result": first(a, TOOL_RESULT_KEYS),
    }


def response_id_of(sp: "SpanRecord") -> str | None:
    """The server's id of a chat span's response (vLLM's ``gen_ai.request.id`` names it)."""
    for c in CONVENTIONS:
        rid = c.response_id(sp)
        if rid:
            return rid
    return None


def content_switch(sp: "SpanRecord") -> str | None:
    """How to turn content capture on in the library that wrote the span (by its scope), if known."""
    scope = sp.scope or ""
    for c in CONVENTIONS:
        for prefix, hint in c.content_switches:
            if scope.startswith(prefix):
                return hint
    return None


def conversation_of(sp: "SpanRecord") -> str | None:
    v = first(sp.attributes, CONVERSATION_KEYS)
    return str(v) if v is not None else None


def agent_name_of(sp: "SpanRecord") -> str:
    return first(sp.attributes, AGENT_NAME_KEYS) or sp.name


__all__ = ["CONVENTIONS", "CONTENT_ORDER", "ChatContent", "Convention", "Msg", "agent_name_of", "chat_content",
           "content_switch", "conversation_of", "first", "model_of", "response_id_of", "span_role", "tool_definitions", "tool_info", "usage_of"]
