"""What an OpenAI call returned -> the response attributes of its ``chat`` span: a chat completion,
a Responses API ``Response`` (whose conversation is remembered for ``previous_response_id``), or
the exception it raised. Streams accumulate their events first (`openai_streams`), then record here.
"""

from __future__ import annotations

from typing import Any, Protocol

from opentelemetry.trace import Status, StatusCode

from auditor.collectors.capture import to_json
from auditor.collectors.genai_messages import (choice_output, get_field, responses_finish_reason,
                                               responses_output_to_genai)


class Recorder(Protocol):
    """What recording needs from the instrumentor: its capture setting and its response history."""

    @property
    def capture_content(self) -> bool: ...

    def remember(self, response_id: Any, messages: list[dict[str, Any]]) -> None: ...


def record_chat_completion(inst: Recorder, span: Any, response: Any) -> None:
    """A chat completion -> the response attributes of the span."""
    if not hasattr(response, "choices"):
        return  # raw-response wrappers: request side only
    if getattr(response, "id", None):
        span.set_attribute("gen_ai.response.id", response.id)
    if getattr(response, "model", None):
        span.set_attribute("gen_ai.response.model", response.model)
    choices = list(response.choices or [])
    span.set_attribute("gen_ai.response.finish_reasons", [c.finish_reason or "" for c in choices])
    usage = getattr(response, "usage", None)
    if usage is not None:
        if usage.prompt_tokens is not None:
            span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
        if usage.completion_tokens is not None:
            span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
    if inst.capture_content:
        span.set_attribute("gen_ai.output.messages",
                           to_json([choice_output(c.message, c.finish_reason) for c in choices]))


def record_response(inst: Recorder, span: Any, response: Any, history: list[dict[str, Any]] | None,
                    items: list[Any] | None = None) -> None:
    """A Responses API ``Response`` (or, for a stream that never completed, the last snapshot and
    the ``items`` seen so far) -> the response attributes of the span."""
    rid = get_field(response, "id")
    if rid:
        span.set_attribute("gen_ai.response.id", str(rid))
    model = get_field(response, "model")
    if model:
        span.set_attribute("gen_ai.response.model", str(model))
    if items is None:
        items = list(get_field(response, "output") or [])
    status = get_field(response, "status")
    finish = responses_finish_reason(status, get_field(response, "incomplete_details"), items)
    span.set_attribute("gen_ai.response.finish_reasons", [finish])
    usage = get_field(response, "usage")
    if usage is not None:
        if get_field(usage, "input_tokens") is not None:
            span.set_attribute("gen_ai.usage.input_tokens", get_field(usage, "input_tokens"))
        if get_field(usage, "output_tokens") is not None:
            span.set_attribute("gen_ai.usage.output_tokens", get_field(usage, "output_tokens"))
    if status == "failed":
        err = get_field(response, "error")
        span.set_attribute("error.type", str(get_field(err, "code") or "response_failed"))
        span.set_status(Status(StatusCode.ERROR, str(get_field(err, "message") or "response failed")[:500]))
    if inst.capture_content:
        outputs = responses_output_to_genai(items, finish)
        span.set_attribute("gen_ai.output.messages", to_json(outputs))
        if history is not None and status in ("completed", "incomplete"):
            inst.remember(rid, history + outputs)


def record_error(span: Any, exc: BaseException) -> None:
    span.set_attribute("error.type", type(exc).__qualname__)
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, str(exc)[:500]))
