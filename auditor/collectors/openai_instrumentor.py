"""`OpenAIInstrumentor`: wraps the ``openai`` client's chat completions and Responses API (sync
and async, streaming and not; ``create`` and ``parse``) so each call becomes a ``chat {model}``
CLIENT span with the GenAI attributes, and injects a W3C ``traceparent`` header so vLLM's
``llm_request`` span joins the same trace. See `auditor.collectors.instrument` for the whole story.

With ``instrument(guard=..., on_unsupported=...)`` every reply that carries tool calls is judged
before the call returns it (`auditor.collectors.guarding`): a stream at its end, before the
caller's loop finishes.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import OrderedDict
from typing import Any, Callable, Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from auditor.collectors.capture import (CONVERSATION, LOCK, SCOPE_NAME, SCOPE_VERSION, active_instrumentor,
                                        env_capture_off, set_active_instrumentor, to_json)
from auditor.collectors.genai_messages import (get_field, is_given, openai_message_to_genai, openai_tools_to_genai,
                                               responses_input_to_genai)
from auditor.collectors.guarding import (ToolCallJudge, UnsupportedToolCall, chat_history, chat_replies, judge,
                                         responses_conversation, validate_mode)
from auditor.collectors.openai_results import record_chat_completion, record_error, record_response
from auditor.collectors.openai_streams import (ChatStreamState, ResponsesStreamState, StreamState, TracedAsyncStream,
                                               TracedStream)

# Supported client versions, declared in one place. The wrapped methods exist in openai>=1.0;
# this module was tested against the version pinned in pyproject.toml.
SUPPORTED_OPENAI = ">=1.0,<4"  # the Responses API (wrapped when present) came in 1.66
TESTED_OPENAI = "3.57.0"

_PROPAGATOR = TraceContextTextMapPropagator()
_HISTORY_LIMIT = 256  # responses whose conversation is kept for previous_response_id


def _suppressed() -> bool:
    key = getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", None)
    return bool(key is not None and otel_context.get_value(key))


def _targets() -> list[tuple[type, str, str, bool]]:
    """(class, method, api, is_async) of every method to wrap in the installed openai: ``create``
    (which the ``stream`` helpers and the tool runners call) and ``parse`` (structured outputs,
    which posts the request itself)."""
    from openai.resources.chat.completions import AsyncCompletions, Completions

    classes = [(Completions, "chat", False), (AsyncCompletions, "chat", True)]
    try:
        from openai.resources.responses import AsyncResponses, Responses
    except ImportError:  # openai < 1.66: no Responses API
        pass
    else:
        classes += [(Responses, "responses", False), (AsyncResponses, "responses", True)]
    return [(cls, method, api, is_async) for cls, api, is_async in classes for method in ("create", "parse")
            if callable(cls.__dict__.get(method))]


class OpenAIInstrumentor:
    """Wraps ``openai``'s chat completions and Responses API so each call becomes a
    ``chat {model}`` span.

    Providers are passed in (``tracer_provider``), not set globally; without one the global
    provider is used. Only one instrumentor can be active at a time.
    """

    def __init__(self, tracer_provider: Any = None, capture_content: bool = True, provider_name: str = "openai"):
        self.tracer_provider = tracer_provider
        self._capture_content = capture_content
        self.provider_name = provider_name
        self._originals: dict[tuple[type, str], Any] = {}
        # response id -> the conversation up to and including that response (GenAI messages, without
        # the request's instructions), for requests that continue it with previous_response_id
        self._history: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._history_lock = threading.Lock()
        self.guard: ToolCallJudge | None = None
        self.on_unsupported = "raise"

    @property
    def capture_content(self) -> bool:
        return self._capture_content and not env_capture_off()

    @property
    def tracer(self) -> trace.Tracer:
        provider = self.tracer_provider or trace.get_tracer_provider()
        return provider.get_tracer(SCOPE_NAME, SCOPE_VERSION)

    @property
    def is_instrumented(self) -> bool:
        return bool(self._originals)

    def instrument(self, guard: ToolCallJudge | None = None, on_unsupported: str = "raise") -> "OpenAIInstrumentor":
        """Wrap the client. ``guard`` (e.g. `auditor.guard.Guard`): judge every tool call a reply
        carries before the caller sees it; ``on_unsupported="raise"`` raises `UnsupportedToolCall`
        (carrying the verdict) for a blocked call, ``"annotate"`` only records the verdicts on the
        span. The verdicts are events on the ``chat`` span either way."""
        self.on_unsupported = validate_mode(on_unsupported)
        if guard is not None and not callable(getattr(guard, "check_reply", None)):
            raise TypeError("guard needs a check_reply(messages, reply, tools) method (auditor.guard.Guard has one)")
        self.guard = guard
        targets = _targets()
        with LOCK:
            active = active_instrumentor()
            if active is self:
                return self
            if active is not None:
                raise RuntimeError("openai is already instrumented by another OpenAIInstrumentor; "
                                   "call its uninstrument() first")
            self._originals = {(cls, attr): getattr(cls, attr) for cls, attr, _, _ in targets}
            for cls, attr, api, is_async in targets:
                wrap = self._wrap_async if is_async else self._wrap_sync
                setattr(cls, attr, wrap(self._originals[(cls, attr)], api))
            set_active_instrumentor(self)
        return self

    def uninstrument(self) -> None:
        with LOCK:
            for (cls, attr), original in self._originals.items():
                setattr(cls, attr, original)
            self._originals = {}
            if active_instrumentor() is self:
                set_active_instrumentor(None)

    def __enter__(self) -> "OpenAIInstrumentor":
        return self.instrument()

    def __exit__(self, *exc: Any) -> None:
        self.uninstrument()

    # -- span construction -------------------------------------------------------------------------------------
    _REQUEST_PARAMS = {
        "chat": (("max_tokens", "gen_ai.request.max_tokens"),
                 ("max_completion_tokens", "gen_ai.request.max_tokens"),
                 ("temperature", "gen_ai.request.temperature"),
                 ("top_p", "gen_ai.request.top_p"),
                 ("seed", "gen_ai.request.seed"),
                 ("frequency_penalty", "gen_ai.request.frequency_penalty"),
                 ("presence_penalty", "gen_ai.request.presence_penalty"),
                 ("n", "gen_ai.request.choice.count")),
        "responses": (("max_output_tokens", "gen_ai.request.max_tokens"),
                      ("temperature", "gen_ai.request.temperature"),
                      ("top_p", "gen_ai.request.top_p")),
    }
    _API_TYPE = {"chat": "chat_completions", "responses": "responses"}  # GenAI semconv openai.api.type

    def _start(self, resource: Any, kwargs: dict[str, Any],
               api: str = "chat") -> tuple[Any, dict[str, Any], list[dict[str, Any]] | None]:
        """Open the span of one call; returns it, the kwargs to call with (traceparent added, one-shot
        iterables materialised) and, for the Responses API with content capture on, the conversation
        so far (to remember under the response id)."""
        model = kwargs.get("model")
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": self.provider_name,
            "openai.api.type": self._API_TYPE[api],
        }
        if is_given(model):
            attrs["gen_ai.request.model"] = str(model)
        for key, attr in self._REQUEST_PARAMS[api]:
            v = kwargs.get(key)
            if is_given(v) and isinstance(v, (int, float)) and not isinstance(v, bool):
                attrs[attr] = v
        stop = kwargs.get("stop") if api == "chat" else None
        if is_given(stop):
            attrs["gen_ai.request.stop_sequences"] = [stop] if isinstance(stop, str) else [str(s) for s in stop]
        conv = CONVERSATION.get()
        if conv:
            attrs["gen_ai.conversation.id"] = conv
        try:
            base = resource._client.base_url
            if base.host:
                attrs["server.address"] = base.host
            if base.port:
                attrs["server.port"] = int(base.port)
        except Exception:  # noqa: BLE001 - metadata only
            pass
        # the history and tools may be one-shot iterables: materialise them before reading them
        history_key = "messages" if api == "chat" else "input"
        for key in (history_key, "tools"):
            v = kwargs.get(key)
            if is_given(v) and not isinstance(v, (list, str)):
                kwargs[key] = list(v)
        tools = kwargs.get("tools")
        history: list[dict[str, Any]] | None = None
        if api == "responses" and self.guard is not None and not self.capture_content:
            history = self._previous(kwargs.get("previous_response_id")) + responses_input_to_genai(None, kwargs.get("input"))
        if self.capture_content:
            if api == "chat":
                messages = kwargs.get("messages")
                if is_given(messages):
                    attrs["gen_ai.input.messages"] = to_json([openai_message_to_genai(m) for m in messages])
            else:
                history = self._previous(kwargs.get("previous_response_id")) + \
                    responses_input_to_genai(None, kwargs.get("input"))
                inputs = responses_input_to_genai(kwargs.get("instructions"), None) + history
                if inputs:
                    attrs["gen_ai.input.messages"] = to_json(inputs)
            if is_given(tools) and tools:
                attrs["gen_ai.tool.definitions"] = to_json(openai_tools_to_genai(tools))
        name = f"chat {model}" if is_given(model) else "chat"
        span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
        # W3C trace context for the server (vLLM makes its llm_request span a child of this one)
        headers = kwargs.get("extra_headers")
        carrier: dict[str, Any] = dict(headers) if isinstance(headers, Mapping) else {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        kwargs["extra_headers"] = carrier
        return span, kwargs, history

    def _previous(self, response_id: Any) -> list[dict[str, Any]]:
        if not is_given(response_id) or not response_id:
            return []
        with self._history_lock:
            return list(self._history.get(str(response_id), []))

    def remember(self, response_id: Any, messages: list[dict[str, Any]]) -> None:
        """Keep a response's conversation for requests that continue it (``previous_response_id``)."""
        if not response_id:
            return
        with self._history_lock:
            self._history[str(response_id)] = messages
            self._history.move_to_end(str(response_id))
            while len(self._history) > _HISTORY_LIMIT:
                self._history.popitem(last=False)

    def _record(self, api: str, span: Any, response: Any, history: list[dict[str, Any]] | None) -> None:
        if api == "chat":
            record_chat_completion(self, span, response)
        elif hasattr(response, "output") and hasattr(response, "status"):  # not a raw-response wrapper
            record_response(self, span, response, history)

    def _stream_state(self, api: str, span: Any, history: list[dict[str, Any]] | None,
                      kwargs: dict[str, Any]) -> StreamState:
        state = ChatStreamState(self, span) if api == "chat" else ResponsesStreamState(self, span, history)
        if self.guard is not None:
            state.judge = lambda st: self._judge_stream(api, st, kwargs, history)
        return state

    # -- the guard -----------------------------------------------------------------------------------------------
    def _judge(self, api: str, span: Any, kwargs: dict[str, Any], response: Any,
               history: list[dict[str, Any]] | None) -> UnsupportedToolCall | None:
        """Judge a finished (not streamed) call's tool calls; the exception to raise, if any."""
        if self.guard is None:
            return None
        if api == "chat":
            if not hasattr(response, "choices"):
                return None  # raw-response wrappers carry no parsed reply
            messages, replies = chat_history(kwargs), chat_replies(response)
        else:
            if not (hasattr(response, "output") and hasattr(response, "status")):
                return None
            messages, replies = responses_conversation(history or [], kwargs.get("instructions"),
                                                       list(get_field(response, "output") or []))
        return self._verdicts(span, messages, replies, kwargs.get("tools"))

    def _judge_stream(self, api: str, state: StreamState, kwargs: dict[str, Any],
                      history: list[dict[str, Any]] | None) -> UnsupportedToolCall | None:
        if api == "chat":
            messages, replies = chat_history(kwargs), state.replies()  # type: ignore[attr-defined]
        else:
            messages, replies = responses_conversation(history or [], kwargs.get("instructions"),
                                                       state.items())  # type: ignore[attr-defined]
        return self._verdicts(state.span, messages, replies, kwargs.get("tools"))

    def _verdicts(self, span: Any, messages: list[Any], replies: list[Any], tools: Any) -> UnsupportedToolCall | None:
        if not replies or self.guard is None:
            return None
        tools = list(tools) if is_given(tools) and tools else None
        try:
            return judge(self.guard, span, messages, replies, tools, self.on_unsupported)
        except Exception as exc:  # noqa: BLE001 - a guard that cannot judge never lets a call pass silently
            record_error(span, exc)
            if self.on_unsupported == "raise":
                raise
            span.set_attribute("auditor.guard.error", f"{type(exc).__name__}: {exc}"[:500])
            return None

    def _wrap_sync(self, original: Callable[..., Any], api: str = "chat") -> Callable[..., Any]:
        inst = self

        @functools.wraps(original)
        def create(resource: Any, *args: Any, **kwargs: Any) -> Any:
            if _suppressed():
                return original(resource, *args, **kwargs)
            span, kwargs, history = inst._start(resource, kwargs, api)
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                try:
                    result = original(resource, *args, **kwargs)
                except BaseException as exc:
                    record_error(span, exc)
                    span.end()
                    raise
            if kwargs.get("stream") is True and hasattr(result, "__next__"):
                return TracedStream(result, inst._stream_state(api, span, history, kwargs))
            try:
                inst._record(api, span, result, history)
                blocked = inst._judge(api, span, kwargs, result, history)
            finally:
                span.end()
            if blocked is not None:
                raise blocked
            return result

        create.__auditor_wrapped__ = original  # type: ignore[attr-defined]
        return create

    def _wrap_async(self, original: Callable[..., Any], api: str = "chat") -> Callable[..., Any]:
        inst = self

        @functools.wraps(original)
        async def create(resource: Any, *args: Any, **kwargs: Any) -> Any:
            if _suppressed():
                return await original(resource, *args, **kwargs)
            span, kwargs, history = inst._start(resource, kwargs, api)
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                try:
                    result = await original(resource, *args, **kwargs)
                except BaseException as exc:
                    record_error(span, exc)
                    span.end()
                    raise
            if kwargs.get("stream") is True and hasattr(result, "__anext__"):
                return TracedAsyncStream(result, inst._stream_state(api, span, history, kwargs))
            try:
                inst._record(api, span, result, history)
                blocked = None
                if inst.guard is not None:  # the guard runs a model: off the event loop
                    blocked = await asyncio.to_thread(inst._judge, api, span, kwargs, result, history)
            finally:
                span.end()
            if blocked is not None:
                raise blocked
            return result

        create.__auditor_wrapped__ = original  # type: ignore[attr-defined]
        return create
