"""Agent and tool spans, for any agent whatever client it uses: `agent_span` is the
``invoke_agent {name}`` root span of one run (the chat and tool spans inside it carry its
``gen_ai.conversation.id``), `tool_span` / `traced_tool` make ``execute_tool {name}`` spans with
the call id, arguments and result. They use the active instrumentor's tracer provider and capture
setting, unless given their own.
"""

from __future__ import annotations

import functools
import inspect
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from auditor.collectors.capture import (CONVERSATION, SCOPE_NAME, SCOPE_VERSION, active_instrumentor, as_plain,
                                        env_capture_off, to_json)


def _tracer(tracer_provider: Any = None) -> trace.Tracer:
    if tracer_provider is not None:
        return tracer_provider.get_tracer(SCOPE_NAME, SCOPE_VERSION)
    active = active_instrumentor()
    if active is not None:
        return active.tracer
    return trace.get_tracer(SCOPE_NAME, SCOPE_VERSION)


def _capture(explicit: bool | None) -> bool:
    if env_capture_off():
        return False
    if explicit is not None:
        return explicit
    active = active_instrumentor()
    return active.capture_content if active is not None else True


def _text(value: Any) -> str:
    return value if isinstance(value, str) else to_json(as_plain(value))


class ToolSpan:
    """Handle yielded by `tool_span`: record the tool's result (or error) on the span."""

    def __init__(self, span: Any, capture: bool):
        self.span = span
        self._capture = capture
        self.result: Any = None

    def set_result(self, result: Any) -> None:
        self.result = result
        if self._capture:
            self.span.set_attribute("gen_ai.tool.call.result", _text(result))

    def set_error(self, error: BaseException | str) -> None:
        message = str(error)
        self.span.set_attribute("error.type", type(error).__qualname__ if isinstance(error, BaseException) else "tool_error")
        self.span.set_status(Status(StatusCode.ERROR, message[:500]))


@contextmanager
def tool_span(
    name: str,
    call_id: str | None = None,
    arguments: Any = None,
    *,
    description: str | None = None,
    tool_type: str = "function",
    tracer_provider: Any = None,
    capture_content: bool | None = None,
) -> Iterator[ToolSpan]:
    """An ``execute_tool {name}`` span carrying the call id, the arguments and (via
    ``.set_result``) the result. An exception marks the span as an error and propagates."""
    capture = _capture(capture_content)
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.type": tool_type,
    }
    if call_id:
        attrs["gen_ai.tool.call.id"] = call_id
    if description:
        attrs["gen_ai.tool.description"] = description
    conv = CONVERSATION.get()
    if conv:
        attrs["gen_ai.conversation.id"] = conv
    if capture and arguments is not None:
        attrs["gen_ai.tool.call.arguments"] = _text(arguments)
    with _tracer(tracer_provider).start_as_current_span(f"execute_tool {name}", kind=SpanKind.INTERNAL,
                                                        attributes=attrs) as span:
        handle = ToolSpan(span, capture)
        try:
            yield handle
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__qualname__)
            raise


def traced_tool(func: Callable[..., Any] | None = None, *, name: str | None = None,
                description: str | None = None) -> Any:
    """Decorator: each call of the tool function runs inside a `tool_span`.

    Pass the model's call id as ``tool_call_id=...`` (removed before the call unless the
    function declares that parameter). Works on sync and async functions::

        @traced_tool
        def read_file(path: str) -> str: ...

        read_file(path="a.py", tool_call_id=call.id)
    """

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        tool_name = name or f.__name__
        doc = description if description is not None else (inspect.getdoc(f) or "").split("\n", 1)[0] or None
        sig = inspect.signature(f)
        takes_id = "tool_call_id" in sig.parameters

        def prepare(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
            call_id = kwargs.get("tool_call_id") if takes_id else kwargs.pop("tool_call_id", None)
            try:
                bound = sig.bind(*args, **kwargs)
                arguments = {k: v for k, v in bound.arguments.items() if k not in ("tool_call_id", "self", "cls")}
            except TypeError:
                arguments = {"args": list(args), **{k: v for k, v in kwargs.items() if k != "tool_call_id"}}
            return call_id, kwargs, arguments

        if inspect.iscoroutinefunction(f):
            @functools.wraps(f)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                call_id, kwargs, arguments = prepare(args, kwargs)
                with tool_span(tool_name, call_id, arguments, description=doc) as t:
                    result = await f(*args, **kwargs)
                    t.set_result(result)
                    return result

            return awrapper

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            call_id, kwargs, arguments = prepare(args, kwargs)
            with tool_span(tool_name, call_id, arguments, description=doc) as t:
                result = f(*args, **kwargs)
                t.set_result(result)
                return result

        return wrapper

    return decorate(func) if func is not None else decorate


@contextmanager
def agent_span(
    name: str,
    conversation_id: str | None = None,
    *,
    agent_id: str | None = None,
    description: str | None = None,
    tracer_provider: Any = None,
) -> Iterator[Any]:
    """The ``invoke_agent {name}`` root span of one run; chat and tool spans inside it carry
    its ``gen_ai.conversation.id``."""
    attrs: dict[str, Any] = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name}
    if agent_id:
        attrs["gen_ai.agent.id"] = agent_id
    if description:
        attrs["gen_ai.agent.description"] = description
    if conversation_id:
        attrs["gen_ai.conversation.id"] = conversation_id
    token = CONVERSATION.set(conversation_id) if conversation_id else None
    try:
        with _tracer(tracer_provider).start_as_current_span(f"invoke_agent {name}", kind=SpanKind.INTERNAL,
                                                            attributes=attrs) as span:
            yield span
    finally:
        if token is not None:
            CONVERSATION.reset(token)
