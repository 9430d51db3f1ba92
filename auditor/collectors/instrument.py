"""OpenTelemetry capture of agent runs that talk to an OpenAI-compatible server (vLLM).

`OpenAIInstrumentor` wraps ``chat.completions.create`` of the ``openai`` client (sync and
async, streaming and not): each completion becomes a ``chat {model}`` CLIENT span with the
GenAI attributes, the input/output messages, the tool definitions and the usage, and a W3C
``traceparent`` header is injected into the request so vLLM's ``llm_request`` span joins the
same trace. `tool_span` / `traced_tool` make ``execute_tool {name}`` spans, `agent_span` the
``invoke_agent {name}`` root span of a run.

Content capture is ON by default (this is an auditor: without the text nothing can be
attributed). Turn it off with ``capture_content=False`` or the environment variable
``AUDITOR_CAPTURE_CONTENT=0`` (which wins, so operators can switch it off without code changes).

Example::

    provider = setup_tracing(jsonl="run.jsonl")
    OpenAIInstrumentor(tracer_provider=provider).instrument()
    with agent_span("fixer", conversation_id="c1"):
        reply = client.chat.completions.create(model="m", messages=msgs, tools=tools)
        for call in reply.choices[0].message.tool_calls or []:
            with tool_span(call.function.name, call.id, call.function.arguments) as t:
                t.set_result(run_tool(call))
    provider.shutdown()
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# Supported client versions, declared in one place. The wrapped methods exist in openai>=1.0;
# this module was tested against the version pinned in pyproject.toml.
SUPPORTED_OPENAI = ">=1.0,<4"
TESTED_OPENAI = "3.57.0"
SCOPE_NAME = "auditor.collectors.instrument"
SCOPE_VERSION = "0.1.0"
CAPTURE_ENV = "AUDITOR_CAPTURE_CONTENT"

_PROPAGATOR = TraceContextTextMapPropagator()
_CONVERSATION: contextvars.ContextVar[str | None] = contextvars.ContextVar("auditor_conversation_id", default=None)
_ACTIVE: "OpenAIInstrumentor | None" = None
_LOCK = threading.Lock()


def _env_capture_off() -> bool:
    return os.environ.get(CAPTURE_ENV, "").strip().lower() in ("0", "false", "no", "off")


def _suppressed() -> bool:
    key = getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", None)
    return bool(key is not None and otel_context.get_value(key))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _dump(obj: Any) -> Any:
    """pydantic objects (e.g. a ChatCompletionMessage appended back to the history) -> dicts."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(exclude_none=True)
    return obj


def _given(v: Any) -> bool:
    """Not None and not openai's NOT_GIVEN / omit sentinels."""
    if v is None:
        return False
    return type(v).__name__ not in ("NotGiven", "Omit")


def _arguments(value: Any) -> Any:
    """Tool-call arguments as an object when they are a JSON object, else verbatim."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        return parsed if isinstance(parsed, dict) else value
    return value


# -- OpenAI wire format -> GenAI semantic-convention messages ----------------------------------------------


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    for p in content:
        p = _dump(p)
        if not isinstance(p, Mapping):
            parts.append({"type": "text", "content": str(p)})
            continue
        kind = p.get("type")
        if kind == "text":
            parts.append({"type": "text", "content": p.get("text", "")})
        elif kind == "refusal":
            parts.append({"type": "text", "content": p.get("refusal", "")})
        elif kind == "image_url":
            url = (p.get("image_url") or {}).get("url", "")
            if url.startswith("data:"):
                parts.append({"type": "blob", "modality": "image", "mime_type": url[5:].split(";", 1)[0],
                              "content": url.split(",", 1)[-1]})
            else:
                parts.append({"type": "uri", "modality": "image", "uri": url})
        elif kind == "input_audio":
            audio = p.get("input_audio") or {}
            parts.append({"type": "blob", "modality": "audio", "mime_type": f"audio/{audio.get('format', '')}",
                          "content": audio.get("data", "")})
        elif kind == "file":
            f = p.get("file") or {}
            parts.append({"type": "file", "file_id": f.get("file_id"), "filename": f.get("filename")})
        else:
            parts.append(dict(p))
    return parts


def openai_message_to_genai(message: Any) -> dict[str, Any]:
    """One OpenAI chat message (dict or pydantic) -> a GenAI ``{"role", "parts"}`` message."""
    m = _dump(message)
    role = m.get("role", "user")
    parts: list[dict[str, Any]] = []
    reasoning = m.get("reasoning_content") or m.get("reasoning")
    if reasoning and role == "assistant":
        parts.append({"type": "reasoning", "content": reasoning})
    if role == "tool":
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(p.get("content", "") for p in _content_parts(content) if p.get("type") == "text")
        parts.append({"type": "tool_call_response", "id": m.get("tool_call_id"), "response": content or ""})
    else:
        parts.extend(_content_parts(m.get("content")))
    for call in m.get("tool_calls") or []:
        call = _dump(call)
        fn = call.get("function") or {}
        parts.append({"type": "tool_call", "id": call.get("id"), "name": fn.get("name"),
                      "arguments": _arguments(fn.get("arguments"))})
    fc = m.get("function_call")
    if fc:
        fc = _dump(fc)
        parts.append({"type": "tool_call", "id": None, "name": fc.get("name"), "arguments": _arguments(fc.get("arguments"))})
    out: dict[str, Any] = {"role": role, "parts": parts}
    if m.get("name"):
        out["name"] = m["name"]
    return out


def openai_tools_to_genai(tools: Any) -> list[dict[str, Any]]:
    out = []
    for t in tools or []:
        t = _dump(t)
        fn = t.get("function") if isinstance(t, Mapping) else None
        if isinstance(fn, Mapping):
            d = {"type": t.get("type", "function"), "name": fn.get("name")}
            if fn.get("description") is not None:
                d["description"] = fn.get("description")
            if fn.get("parameters") is not None:
                d["parameters"] = fn.get("parameters")
            out.append(d)
        elif isinstance(t, Mapping):
            out.append(dict(t))
    return out


def _choice_output(message: Any, finish_reason: Any) -> dict[str, Any]:
    msg = openai_message_to_genai(message)
    msg["role"] = "assistant"
    msg["finish_reason"] = finish_reason or ""
    return msg


# -- the instrumentor ------------------------------------------------------------------------------------------


class OpenAIInstrumentor:
    """Wraps ``openai``'s chat completions so each call becomes a ``chat {model}`` span.

    Providers are passed in (``tracer_provider``), not set globally; without one the global
    provider is used. Only one instrumentor can be active at a time.
    """

    def __init__(self, tracer_provider: Any = None, capture_content: bool = True, provider_name: str = "openai"):
        self.tracer_provider = tracer_provider
        self._capture_content = capture_content
        self.provider_name = provider_name
        self._originals: dict[tuple[type, str], Any] = {}

    @property
    def capture_content(self) -> bool:
        return self._capture_content and not _env_capture_off()

    @property
    def tracer(self) -> trace.Tracer:
        provider = self.tracer_provider or trace.get_tracer_provider()
        return provider.get_tracer(SCOPE_NAME, SCOPE_VERSION)

    @property
    def is_instrumented(self) -> bool:
        return bool(self._originals)

    def instrument(self) -> "OpenAIInstrumentor":
        global _ACTIVE
        from openai.resources.chat.completions import AsyncCompletions, Completions

        with _LOCK:
            if _ACTIVE is self:
                return self
            if _ACTIVE is not None:
                raise RuntimeError("openai is already instrumented by another OpenAIInstrumentor; "
                                   "call its uninstrument() first")
            orig_sync = Completions.create
            orig_async = AsyncCompletions.create
            self._originals = {(Completions, "create"): orig_sync, (AsyncCompletions, "create"): orig_async}
            Completions.create = self._wrap_sync(orig_sync)  # type: ignore[method-assign]
            AsyncCompletions.create = self._wrap_async(orig_async)  # type: ignore[method-assign]
            _ACTIVE = self
        return self

    def uninstrument(self) -> None:
        global _ACTIVE
        with _LOCK:
            for (cls, attr), original in self._originals.items():
                setattr(cls, attr, original)
            self._originals = {}
            if _ACTIVE is self:
                _ACTIVE = None

    def __enter__(self) -> "OpenAIInstrumentor":
        return self.instrument()

    def __exit__(self, *exc: Any) -> None:
        self.uninstrument()

    # -- span construction -------------------------------------------------------------------------------------
    def _start(self, resource: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        model = kwargs.get("model")
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": self.provider_name,
        }
        if _given(model):
            attrs["gen_ai.request.model"] = str(model)
        for key, attr in (("max_tokens", "gen_ai.request.max_tokens"),
                          ("max_completion_tokens", "gen_ai.request.max_tokens"),
                          ("temperature", "gen_ai.request.temperature"),
                          ("top_p", "gen_ai.request.top_p"),
                          ("seed", "gen_ai.request.seed"),
                          ("frequency_penalty", "gen_ai.request.frequency_penalty"),
                          ("presence_penalty", "gen_ai.request.presence_penalty"),
                          ("n", "gen_ai.request.choice.count")):
            v = kwargs.get(key)
            if _given(v) and isinstance(v, (int, float)) and not isinstance(v, bool):
                attrs[attr] = v
        stop = kwargs.get("stop")
        if _given(stop):
            attrs["gen_ai.request.stop_sequences"] = [stop] if isinstance(stop, str) else [str(s) for s in stop]
        conv = _CONVERSATION.get()
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
        # the history may be a one-shot iterable: materialise it before reading it
        messages = kwargs.get("messages")
        if _given(messages) and not isinstance(messages, list):
            messages = list(messages)
            kwargs["messages"] = messages
        tools = kwargs.get("tools")
        if _given(tools) and not isinstance(tools, list):
            tools = list(tools)
            kwargs["tools"] = tools
        if self.capture_content:
            if _given(messages):
                attrs["gen_ai.input.messages"] = _json([openai_message_to_genai(m) for m in messages])
            if _given(tools) and tools:
                attrs["gen_ai.tool.definitions"] = _json(openai_tools_to_genai(tools))
        name = f"chat {model}" if _given(model) else "chat"
        span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
        # W3C trace context for the server (vLLM makes its llm_request span a child of this one)
        headers = kwargs.get("extra_headers")
        carrier: dict[str, Any] = dict(headers) if isinstance(headers, Mapping) else {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        kwargs["extra_headers"] = carrier
        return span, kwargs

    def _record_response(self, span: Any, response: Any) -> None:
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
        if self.capture_content:
            span.set_attribute("gen_ai.output.messages",
                               _json([_choice_output(c.message, c.finish_reason) for c in choices]))

    @staticmethod
    def _record_error(span: Any, exc: BaseException) -> None:
        span.set_attribute("error.type", type(exc).__qualname__)
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc)[:500]))

    def _wrap_sync(self, original: Callable[..., Any]) -> Callable[..., Any]:
        inst = self

        @functools.wraps(original)
        def create(resource: Any, *args: Any, **kwargs: Any) -> Any:
            if _suppressed():
                return original(resource, *args, **kwargs)
            span, kwargs = inst._start(resource, kwargs)
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                try:
                    result = original(resource, *args, **kwargs)
                except BaseException as exc:
                    inst._record_error(span, exc)
                    span.end()
                    raise
            if kwargs.get("stream") is True and hasattr(result, "__next__"):
                return _TracedStream(result, _StreamState(inst, span))
            try:
                inst._record_response(span, result)
            finally:
                span.end()
            return result

        create.__auditor_wrapped__ = original  # type: ignore[attr-defined]
        return create

    def _wrap_async(self, original: Callable[..., Any]) -> Callable[..., Any]:
        inst = self

        @functools.wraps(original)
        async def create(resource: Any, *args: Any, **kwargs: Any) -> Any:
            if _suppressed():
                return await original(resource, *args, **kwargs)
            span, kwargs = inst._start(resource, kwargs)
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                try:
                    result = await original(resource, *args, **kwargs)
                except BaseException as exc:
                    inst._record_error(span, exc)
                    span.end()
                    raise
            if kwargs.get("stream") is True and hasattr(result, "__anext__"):
                return _TracedAsyncStream(result, _StreamState(inst, span))
            try:
                inst._record_response(span, result)
            finally:
                span.end()
            return result

        create.__auditor_wrapped__ = original  # type: ignore[attr-defined]
        return create


# -- streaming -----------------------------------------------------------------------------------------------------


class _StreamState:
    """Accumulates chunks into the final messages; ends the span exactly once."""

    def __init__(self, inst: OpenAIInstrumentor, span: Any):
        self.inst = inst
        self.span = span
        self.choices: dict[int, dict[str, Any]] = {}
        self.response_id: str | None = None
        self.model: str | None = None
        self.usage: Any = None
        self._ended = False
        self._lock = threading.Lock()

    def add(self, chunk: Any) -> None:
        try:
            if getattr(chunk, "id", None):
                self.response_id = chunk.id
            if getattr(chunk, "model", None):
                self.model = chunk.model
            if getattr(chunk, "usage", None) is not None:
                self.usage = chunk.usage
            for c in getattr(chunk, "choices", None) or []:
                st = self.choices.setdefault(c.index, {"content": [], "reasoning": [], "calls": {}, "finish": None})
                delta = c.delta
                if delta is not None:
                    if delta.content:
                        st["content"].append(delta.content)
                    r = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)
                    if r:
                        st["reasoning"].append(r)
                    for tc in delta.tool_calls or []:
                        call = st["calls"].setdefault(tc.index, {"id": None, "name": "", "arguments": []})
                        if tc.id:
                            call["id"] = tc.id
                        if tc.function is not None:
                            if tc.function.name:
                                call["name"] += tc.function.name
                            if tc.function.arguments:
                                call["arguments"].append(tc.function.arguments)
                if c.finish_reason:
                    st["finish"] = c.finish_reason
        except Exception:  # noqa: BLE001 - never break the agent's stream
            pass

    def finish(self, exc: BaseException | None = None) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
        span = self.span
        try:
            if self.response_id:
                span.set_attribute("gen_ai.response.id", self.response_id)
            if self.model:
                span.set_attribute("gen_ai.response.model", self.model)
            ordered = [self.choices[i] for i in sorted(self.choices)]
            span.set_attribute("gen_ai.response.finish_reasons", [st["finish"] or "" for st in ordered])
            if self.usage is not None:
                if getattr(self.usage, "prompt_tokens", None) is not None:
                    span.set_attribute("gen_ai.usage.input_tokens", self.usage.prompt_tokens)
                if getattr(self.usage, "completion_tokens", None) is not None:
                    span.set_attribute("gen_ai.usage.output_tokens", self.usage.completion_tokens)
            if self.inst.capture_content:
                out = []
                for st in ordered:
                    msg: dict[str, Any] = {"role": "assistant"}
                    if st["reasoning"]:
                        msg["reasoning_content"] = "".join(st["reasoning"])
                    msg["content"] = "".join(st["content"]) if st["content"] or not st["calls"] else None
                    msg["tool_calls"] = [
                        {"id": call["id"], "type": "function",
                         "function": {"name": call["name"], "arguments": "".join(call["arguments"])}}
                        for _, call in sorted(st["calls"].items())
                    ]
                    out.append(_choice_output(msg, st["finish"]))
                span.set_attribute("gen_ai.output.messages", _json(out))
            if exc is not None:
                OpenAIInstrumentor._record_error(span, exc)
        finally:
            span.end()


class _TracedStream:
    """Behaves like ``openai.Stream``: iterate, ``with``, ``close()``; other attributes pass through."""

    def __init__(self, stream: Any, state: _StreamState):
        self._stream = stream
        self._state = state

    def __iter__(self) -> "_TracedStream":
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._stream)
        except StopIteration:
            self._state.finish()
            raise
        except BaseException as exc:
            self._state.finish(exc)
            raise
        self._state.add(chunk)
        return chunk

    def __enter__(self) -> "_TracedStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._state.finish()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        try:
            self._state.finish()
        except Exception:  # noqa: BLE001
            pass


class _TracedAsyncStream:
    """Behaves like ``openai.AsyncStream``."""

    def __init__(self, stream: Any, state: _StreamState):
        self._stream = stream
        self._state = state

    def __aiter__(self) -> "_TracedAsyncStream":
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            self._state.finish()
            raise
        except BaseException as exc:
            self._state.finish(exc)
            raise
        self._state.add(chunk)
        return chunk

    async def __aenter__(self) -> "_TracedAsyncStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self._stream.close()
        finally:
            self._state.finish()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        try:
            self._state.finish()
        except Exception:  # noqa: BLE001
            pass


# -- tool and agent spans --------------------------------------------------------------------------------------------


def _tracer(tracer_provider: Any = None) -> trace.Tracer:
    if tracer_provider is not None:
        return tracer_provider.get_tracer(SCOPE_NAME, SCOPE_VERSION)
    active = _ACTIVE
    if active is not None:
        return active.tracer
    return trace.get_tracer(SCOPE_NAME, SCOPE_VERSION)


def _capture(explicit: bool | None) -> bool:
    if _env_capture_off():
        return False
    if explicit is not None:
        return explicit
    active = _ACTIVE
    return active.capture_content if active is not None else True


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _json(_dump(value))


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
    conv = _CONVERSATION.get()
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
    token = _CONVERSATION.set(conversation_id) if conversation_id else None
    try:
        with _tracer(tracer_provider).start_as_current_span(f"invoke_agent {name}", kind=SpanKind.INTERNAL,
                                                            attributes=attrs) as span:
            yield span
    finally:
        if token is not None:
            _CONVERSATION.reset(token)
