"""`@guarded`: a tool function that asks the guard before it runs, for agents without the
OpenAI client (or that call tools some other way).

    guard = Guard()
    history: list[dict] = []                      # the agent's conversation, as the model saw it

    @guarded(guard, messages=lambda: history, tools=TOOLS)
    def send_email(to: str, subject: str, body: str) -> str:
        ...

    send_email(to="x@y.example", subject="...", body="...")   # raises UnsupportedToolCall if blocked

The call is judged as ``{"name": <the function's name>, "arguments": <its arguments by name>}``
made by the conversation's last assistant message when that message makes it (same name and
arguments; only tool results after it), else by a reply of this call alone. The conversation
comes from ``messages`` (a list, read at call time, or a callable returning it) or, when not
given, from the innermost ``with guard_context(messages, tools):`` block. ``on_unsupported``:
``"raise"`` (the function never runs), or ``"annotate"`` (it runs; the verdict is recorded as an
event on the current OpenTelemetry span, as the instrumentor does). Either way the function's
``last_verdict`` attribute holds the latest verdict.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from auditor.collectors.guarding import EVENT_NAME, UnsupportedToolCall, validate_mode
from auditor.guard.conversation import GuardInputError

_CONTEXT: contextvars.ContextVar[tuple[Sequence[Any], Sequence[Any] | None] | None] = contextvars.ContextVar(
    "auditor_guard_context", default=None)


@contextlib.contextmanager
def guard_context(messages: Sequence[Any], tools: Sequence[Any] | None = None) -> Iterator[None]:
    """The conversation (and tools) that `guarded` tools called inside this block are judged in."""
    token = _CONTEXT.set((messages, tools))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def _resolve(value: Any) -> Any:
    return value() if callable(value) else value


def guarded(guard: Any, *, messages: Any = None, tools: Any = None, name: str | None = None,
            on_unsupported: str = "raise") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a tool function so each call is judged first; see the module docstring."""
    validate_mode(on_unsupported)

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(fn)
        tool_name = name or fn.__name__

        def judge(args: tuple, kwargs: dict) -> Any:
            bound = signature.bind(*args, **kwargs)
            arguments = dict(bound.arguments)
            if messages is not None:
                convo, offered = _resolve(messages), _resolve(tools)
            else:
                ctx = _CONTEXT.get()
                if ctx is None:
                    raise GuardInputError(f"{tool_name}: no conversation to judge the call in: pass messages= "
                                          "to @guarded or call it inside guard_context(messages, tools)")
                convo, offered = ctx[0], ctx[1] if tools is None else _resolve(tools)
            verdict = guard.check(list(convo or []), {"name": tool_name, "arguments": arguments}, offered)
            wrapper.last_verdict = verdict  # type: ignore[attr-defined]
            _annotate(verdict)
            if not verdict.allowed and on_unsupported == "raise":
                raise UnsupportedToolCall(verdict)
            return verdict

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                import asyncio

                await asyncio.to_thread(judge, args, kwargs)
                return await fn(*args, **kwargs)
        else:
            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                judge(args, kwargs)
                return fn(*args, **kwargs)

        wrapper.last_verdict = None  # type: ignore[attr-defined]
        wrapper.__auditor_guarded__ = tool_name  # type: ignore[attr-defined]
        return wrapper

    return wrap


def _annotate(verdict: Any) -> None:
    from opentelemetry import trace

    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(EVENT_NAME, {k: v for k, v in verdict.span_attributes().items() if v is not None})


__all__ = ["guarded", "guard_context"]
