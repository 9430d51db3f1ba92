"""What a convention is: how one instrumentation library records an LLM call, a tool call and an
agent run on spans. `Convention` is the interface every library module fills in; `Msg` is a
message as read from a span, before validation; `ChatContent` a chat span's messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from auditor.collectors.spans import SpanRecord

# A span's role in a run, strongest first: a span that looks like several takes the strongest.
ROLES = ("llm_request", "tool", "agent", "chat")


@dataclass
class Msg:
    """A message before validation (so one bad message is reported, not fatal)."""

    role: str
    content: str = ""
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    finish_reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def key(self) -> tuple[Any, ...]:
        return (self.role, self.content, tuple(c.get("id") for c in self.tool_calls))


@dataclass
class ChatContent:
    """A chat span's input and output messages (None: not recorded), and the convention they were
    read in (``"none"``: no convention's messages were found)."""

    inputs: list[Msg] | None
    outputs: list[Msg] | None
    convention: str = "none"


class Convention:
    """How one library records spans. Subclass it, fill in what the library records (an empty
    tuple or the default method: nothing), and add an instance to `conventions.CONVENTIONS`.

    Attribute names are listed most specific first; across conventions they are looked up in
    `CONVENTIONS` order, the first non-empty value winning.
    """

    name: str = ""  # what trajectories record in ``metadata["conventions"]``
    model_keys: tuple[str, ...] = ()
    input_tokens_keys: tuple[str, ...] = ()
    output_tokens_keys: tuple[str, ...] = ()
    conversation_keys: tuple[str, ...] = ()  # groups the spans of one conversation
    response_id_keys: tuple[str, ...] = ()  # the server's id of a chat span's response (= vLLM's request id)
    agent_name_keys: tuple[str, ...] = ()
    tool_name_keys: tuple[str, ...] = ()  # on tool spans
    tool_call_id_keys: tuple[str, ...] = ()
    tool_arguments_keys: tuple[str, ...] = ()
    tool_result_keys: tuple[str, ...] = ()
    # (instrumentation scope prefix, how to turn its content capture on), for the issue a chat span
    # without content raises
    content_switches: tuple[tuple[str, str], ...] = ()
    # any attribute named so marks a chat span (looked for once, when no convention's span_role sees a role)
    chat_attribute_prefixes: tuple[str, ...] = ()

    def span_role(self, sp: "SpanRecord") -> str | None:
        """The span's role (one of `ROLES`, the strongest this library's attributes show), or None
        when this library's attributes say nothing about it."""
        return None

    def response_id(self, sp: "SpanRecord") -> str | None:
        """The server's id of the chat span's response, when this library records it."""
        for k in self.response_id_keys:
            v = sp.attributes.get(k)
            if v not in (None, ""):
                return str(v)
        return None

    def messages(self, sp: "SpanRecord") -> ChatContent | None:
        """The chat span's messages when it records them in this library's attributes, else None."""
        return None

    def fallback_messages(self, sp: "SpanRecord") -> ChatContent | None:
        """Messages found somewhere weaker (span events, a raw input value); consulted only when no
        convention's `messages` applies."""
        return None

    def tool_definitions(self, attrs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The tools offered to the model, as raw definitions (``{"name", "description",
        "parameters"}`` or OpenAI's ``{"function": {...}}``); empty when not recorded this way."""
        return []
