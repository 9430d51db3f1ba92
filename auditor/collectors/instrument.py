"""OpenTelemetry capture of agent runs that talk to an OpenAI-compatible server (vLLM).

`OpenAIInstrumentor` wraps two APIs of the ``openai`` client (sync and async, streaming and
not): ``chat.completions.create`` and the Responses API's ``responses.create`` (which the
``stream`` helpers and tool runners call too), and both ``parse`` methods (structured outputs).
Each call becomes a ``chat {model}`` CLIENT span with the GenAI attributes, the input/output
messages, the tool definitions and the usage, and a W3C ``traceparent`` header is injected into
the request so vLLM's ``llm_request`` span joins the same trace. `tool_span` / `traced_tool`
make ``execute_tool {name}`` spans, `agent_span` the ``invoke_agent {name}`` root span of a run.

Both APIs give the same span shape (``gen_ai.operation.name`` = ``chat``; ``openai.api.type``
says which API), so a run assembles into a trajectory the same way. For the Responses API:
``instructions`` is the first (system) input message; ``input`` (a string, or a list of items:
messages, ``function_call`` items (assistant tool calls, keyed by ``call_id``),
``function_call_output`` items (tool results), ``reasoning`` items) and the response's
``output`` items become messages, consecutive assistant-side items (reasoning, text, tool calls)
making one assistant message; ``status`` (+ ``incomplete_details``) gives the finish reason
(``stop``, ``tool_calls``, ``length``, ...). A request that continues a stored response
(``previous_response_id``) sends only its new items; when this instrumentor recorded that
response, its history is put back in front of them, so the span holds the whole conversation the
model saw. History kept server-side in a ``conversation`` object is not rebuilt.

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

or, with the Responses API::

    resp = client.responses.create(model="m", instructions=system, input=items, tools=tools)
    for item in resp.output:
        if item.type == "function_call":
            with tool_span(item.name, item.call_id, item.arguments) as t:
                t.set_result(run_tool(item))
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# Supported client versions, declared in one place. The wrapped methods exist in openai>=1.0;
# this module was tested against the version pinned in pyproject.toml.
SUPPORTED_OPENAI = ">=1.0,<4"  # the Responses API (wrapped when present) came in 1.66
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
        try:  # no serializer warnings in the agent's log (parsed generic models make them)
            return obj.model_dump(exclude_none=True, warnings=False)
        except TypeError:  # a model_dump without that keyword
            return obj.model_dump(exclude_none=True)
    return obj


def _given(v: Any) -> bool:
    """Not None and not openai's NOT_GIVEN / omit sentinels."""
    if v is None:
        return False
    return type(v).__name__ not in ("NotGiven", "Omit")


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` for pydantic objects."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


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
        if kind in ("text", "input_text", "output_text"):  # chat; Responses input / output
            parts.append({"type": "text", "content": p.get("text", "")})
        elif kind == "refusal":
            parts.append({"type": "text", "content": p.get("refusal", "")})
        elif kind in ("image_url", "input_image"):
            url = p.get("image_url") or ""
            url = url.get("url", "") if isinstance(url, Mapping) else str(url)  # chat: {"url"}; Responses: str
            if not url and p.get("file_id"):
                parts.append({"type": "file", "modality": "image", "file_id": p.get("file_id")})
            elif url.startswith("data:"):
                parts.append({"type": "blob", "modality": "image", "mime_type": url[5:].split(";", 1)[0],
                              "content": url.split(",", 1)[-1]})
            else:
                parts.append({"type": "uri", "modality": "image", "uri": url})
        elif kind == "input_file":
            d = {"type": "file", "file_id": p.get("file_id"), "filename": p.get("filename")}
            if p.get("file_url"):
                d["uri"] = p["file_url"]
            parts.append(d)
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
        if isinstance(fn, Mapping) or (isinstance(t, Mapping) and t.get("type") == "function" and "name" in t):
            fn = fn if isinstance(fn, Mapping) else t  # chat: {"function": {...}}; Responses: flat
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


# -- OpenAI Responses API items -> GenAI semantic-convention messages ------------------------------------------

_TOOL_CALL_ITEMS = {"function_call": "arguments", "custom_tool_call": "input"}
_TOOL_OUTPUT_ITEMS = ("function_call_output", "custom_tool_call_output")


def _text_of(content: Any) -> str:
    """A tool output (a string or a list of content parts) as text."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        parts = _content_parts(content)
        texts = [p.get("content", "") for p in parts if p.get("type") == "text"]
        return "".join(texts) if texts or not parts else _json(parts)
    return _json(_dump(content))


def _reasoning_text(item: Mapping[str, Any]) -> str:
    """A ``reasoning`` item's text: its full reasoning text (vLLM) when present, else its summary."""
    full = [_get(c, "text") or "" for c in item.get("content") or [] if _get(c, "type") in ("reasoning_text", None)]
    if any(full):
        return "".join(full)
    return "\n\n".join(_get(c, "text") or "" for c in item.get("summary") or [])


def responses_items_to_genai(items: Any) -> list[dict[str, Any]]:
    """Responses API items (input or output; dicts or pydantic) -> GenAI messages.

    Consecutive assistant-side items (assistant messages, ``function_call``, ``reasoning``, and
    other item kinds such as built-in tool calls, kept as generic parts) make one assistant
    message, so a response's output and the same items sent back as history read alike.
    """
    out: list[dict[str, Any]] = []
    group: dict[str, Any] | None = None

    def assistant() -> list[dict[str, Any]]:
        nonlocal group
        if group is None:
            group = {"role": "assistant", "parts": []}
            out.append(group)
        return group["parts"]

    for raw in items or []:
        if isinstance(raw, str):
            group = None
            out.append({"role": "user", "parts": [{"type": "text", "content": raw}]})
            continue
        it = _dump(raw)
        if not isinstance(it, Mapping):
            continue
        kind = it.get("type")
        role = it.get("role")
        if role is not None and kind in (None, "message"):
            if role == "assistant":
                assistant().extend(_content_parts(it.get("content")))
            else:
                group = None
                out.append({"role": role, "parts": _content_parts(it.get("content"))})
        elif kind in _TOOL_CALL_ITEMS:
            assistant().append({"type": "tool_call", "id": it.get("call_id"), "name": it.get("name"),
                                "arguments": _arguments(it.get(_TOOL_CALL_ITEMS[kind]))})
        elif kind in _TOOL_OUTPUT_ITEMS:
            group = None
            out.append({"role": "tool", "parts": [{"type": "tool_call_response", "id": it.get("call_id"),
                                                   "response": _text_of(it.get("output"))}]})
        elif kind == "reasoning":
            text = _reasoning_text(it)
            if text:
                assistant().append({"type": "reasoning", "content": text})
        else:
            assistant().append(dict(it))
    return out


def responses_input_to_genai(instructions: Any, input: Any) -> list[dict[str, Any]]:
    """``instructions`` (a system message) and ``input`` (a string: one user message) -> GenAI messages."""
    out: list[dict[str, Any]] = []
    if _given(instructions) and instructions:
        if isinstance(instructions, str):
            out.append({"role": "system", "parts": [{"type": "text", "content": instructions}]})
        else:  # a Response object echoes instructions as a list of input items
            out.extend(responses_items_to_genai(instructions))
    if _given(input) and input is not None:
        out.extend(responses_items_to_genai([input] if isinstance(input, str) else input))
    return out


def responses_finish_reason(status: Any, incomplete_details: Any = None, items: Any = ()) -> str:
    """A response's ``status`` as a chat-style finish reason."""
    if status == "completed":
        calls = any(_get(i, "type") in _TOOL_CALL_ITEMS for i in items or [])
        return "tool_calls" if calls else "stop"
    if status == "incomplete":
        reason = _get(incomplete_details, "reason")
        return {"max_output_tokens": "length"}.get(reason, reason or "incomplete")
    if status == "failed":
        return "error"
    return "" if status in (None, "in_progress", "queued") else str(status)


def responses_output_to_genai(items: Any, finish_reason: str) -> list[dict[str, Any]]:
    msgs = responses_items_to_genai(items)
    for m in msgs:
        m["role"] = "assistant"
        m["finish_reason"] = finish_reason
    return msgs


# -- the instrumentor ------------------------------------------------------------------------------------------


_HISTORY_LIMIT = 256  # responses whose conversation is kept for previous_response_id


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
        targets = _targets()
        with _LOCK:
            if _ACTIVE is self:
                return self
            if _ACTIVE is not None:
                raise RuntimeError("openai is already instrumented by another OpenAIInstrumentor; "
                                   "call its uninstrument() first")
            self._originals = {(cls, attr): getattr(cls, attr) for cls, attr, _, _ in targets}
            for cls, attr, api, is_async in targets:
                wrap = self._wrap_async if is_async else self._wrap_sync
                setattr(cls, attr, wrap(self._originals[(cls, attr)], api))
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
        if _given(model):
            attrs["gen_ai.request.model"] = str(model)
        for key, attr in self._REQUEST_PARAMS[api]:
            v = kwargs.get(key)
            if _given(v) and isinstance(v, (int, float)) and not isinstance(v, bool):
                attrs[attr] = v
        stop = kwargs.get("stop") if api == "chat" else None
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
        # the history and tools may be one-shot iterables: materialise them before reading them
        history_key = "messages" if api == "chat" else "input"
        for key in (history_key, "tools"):
            v = kwargs.get(key)
            if _given(v) and not isinstance(v, (list, str)):
                kwargs[key] = list(v)
        tools = kwargs.get("tools")
        history: list[dict[str, Any]] | None = None
        if self.capture_content:
            if api == "chat":
                messages = kwargs.get("messages")
                if _given(messages):
                    attrs["gen_ai.input.messages"] = _json([openai_message_to_genai(m) for m in messages])
            else:
                history = self._previous(kwargs.get("previous_response_id")) + \
                    responses_input_to_genai(None, kwargs.get("input"))
                inputs = responses_input_to_genai(kwargs.get("instructions"), None) + history
                if inputs:
                    attrs["gen_ai.input.messages"] = _json(inputs)
            if _given(tools) and tools:
                attrs["gen_ai.tool.definitions"] = _json(openai_tools_to_genai(tools))
        name = f"chat {model}" if _given(model) else "chat"
        span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
        # W3C trace context for the server (vLLM makes its llm_request span a child of this one)
        headers = kwargs.get("extra_headers")
        carrier: dict[str, Any] = dict(headers) if isinstance(headers, Mapping) else {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        kwargs["extra_headers"] = carrier
        return span, kwargs, history

    def _previous(self, response_id: Any) -> list[dict[str, Any]]:
        if not _given(response_id) or not response_id:
            return []
        with self._history_lock:
            return list(self._history.get(str(response_id), []))

    def _remember(self, response_id: Any, messages: list[dict[str, Any]]) -> None:
        if not response_id:
            return
        with self._history_lock:
            self._history[str(response_id)] = messages
            self._history.move_to_end(str(response_id))
            while len(self._history) > _HISTORY_LIMIT:
                self._history.popitem(last=False)

    def _record(self, api: str, span: Any, response: Any, history: list[dict[str, Any]] | None) -> None:
        if api == "chat":
            self._record_response(span, response)
        elif hasattr(response, "output") and hasattr(response, "status"):  # not a raw-response wrapper
            self._record_responses(span, response, history)

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

    def _record_responses(self, span: Any, response: Any, history: list[dict[str, Any]] | None,
                          items: list[Any] | None = None) -> None:
        """A Responses API ``Response`` (or, for a stream that never completed, the last snapshot and
        the ``items`` seen so far) -> the response attributes of the span."""
        rid = _get(response, "id")
        if rid:
            span.set_attribute("gen_ai.response.id", str(rid))
        model = _get(response, "model")
        if model:
            span.set_attribute("gen_ai.response.model", str(model))
        if items is None:
            items = list(_get(response, "output") or [])
        status = _get(response, "status")
        finish = responses_finish_reason(status, _get(response, "incomplete_details"), items)
        span.set_attribute("gen_ai.response.finish_reasons", [finish])
        usage = _get(response, "usage")
        if usage is not None:
            if _get(usage, "input_tokens") is not None:
                span.set_attribute("gen_ai.usage.input_tokens", _get(usage, "input_tokens"))
            if _get(usage, "output_tokens") is not None:
                span.set_attribute("gen_ai.usage.output_tokens", _get(usage, "output_tokens"))
        if status == "failed":
            err = _get(response, "error")
            span.set_attribute("error.type", str(_get(err, "code") or "response_failed"))
            span.set_status(Status(StatusCode.ERROR, str(_get(err, "message") or "response failed")[:500]))
        if self.capture_content:
            outputs = responses_output_to_genai(items, finish)
            span.set_attribute("gen_ai.output.messages", _json(outputs))
            if history is not None and status in ("completed", "incomplete"):
                self._remember(rid, history + outputs)

    @staticmethod
    def _record_error(span: Any, exc: BaseException) -> None:
        span.set_attribute("error.type", type(exc).__qualname__)
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc)[:500]))

    def _stream_state(self, api: str, span: Any, history: list[dict[str, Any]] | None) -> "_StreamStateBase":
        return _StreamState(self, span) if api == "chat" else _ResponsesStreamState(self, span, history)

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
                    inst._record_error(span, exc)
                    span.end()
                    raise
            if kwargs.get("stream") is True and hasattr(result, "__next__"):
                return _TracedStream(result, inst._stream_state(api, span, history))
            try:
                inst._record(api, span, result, history)
            finally:
                span.end()
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
                    inst._record_error(span, exc)
                    span.end()
                    raise
            if kwargs.get("stream") is True and hasattr(result, "__anext__"):
                return _TracedAsyncStream(result, inst._stream_state(api, span, history))
            try:
                inst._record(api, span, result, history)
            finally:
                span.end()
            return result

        create.__auditor_wrapped__ = original  # type: ignore[attr-defined]
        return create


# -- streaming -----------------------------------------------------------------------------------------------------


class _StreamStateBase:
    """Accumulates a stream's events (``add``); ``finish`` records them on the span (``_record``)
    and ends it, exactly once, whether the stream was consumed, closed early or failed."""

    def __init__(self, inst: OpenAIInstrumentor, span: Any):
        self.inst = inst
        self.span = span
        self._ended = False
        self._lock = threading.Lock()

    def add(self, event: Any) -> None:
        raise NotImplementedError

    def _record(self, span: Any) -> None:
        raise NotImplementedError

    def finish(self, exc: BaseException | None = None) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
        span = self.span
        try:
            self._record(span)
            if exc is not None:
                OpenAIInstrumentor._record_error(span, exc)
        finally:
            span.end()


class _StreamState(_StreamStateBase):
    """Chat completions: chunks -> the final messages."""

    def __init__(self, inst: OpenAIInstrumentor, span: Any):
        super().__init__(inst, span)
        self.choices: dict[int, dict[str, Any]] = {}
        self.response_id: str | None = None
        self.model: str | None = None
        self.usage: Any = None

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

    def _record(self, span: Any) -> None:
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


class _ResponsesStreamState(_StreamStateBase):
    """Responses API: typed events -> the final response. The ``response.completed`` (or
    ``.incomplete`` / ``.failed``) event's response is used as is; its output items, when the
    event leaves them out, and the output of a stream closed early are rebuilt from the
    ``response.output_item.*`` and delta events."""

    _LIFECYCLE = ("response.created", "response.queued", "response.in_progress", "response.completed",
                  "response.incomplete", "response.failed")
    _DELTAS = {"response.output_text.delta": "text", "response.function_call_arguments.delta": "arguments",
               "response.custom_tool_call_input.delta": "arguments", "response.reasoning_text.delta": "reasoning",
               "response.reasoning_summary_text.delta": "summary"}

    def __init__(self, inst: OpenAIInstrumentor, span: Any, history: list[dict[str, Any]] | None):
        super().__init__(inst, span)
        self.history = history
        self.response: Any = None  # the latest lifecycle snapshot
        self.done: dict[int, Any] = {}  # output_index -> finished item
        self.partial: dict[int, dict[str, Any]] = {}  # output_index -> {"item", "text", "arguments", ...}
        self.error: Any = None

    def add(self, event: Any) -> None:
        try:
            kind = getattr(event, "type", None)
            if kind in self._LIFECYCLE:
                self.response = getattr(event, "response", None) or self.response
            elif kind == "response.output_item.added":
                self.partial[event.output_index] = {"item": _dump(event.item), "text": [], "arguments": [],
                                                    "reasoning": [], "summary": []}
            elif kind == "response.output_item.done":
                self.done[event.output_index] = event.item
            elif kind in self._DELTAS:
                st = self.partial.get(getattr(event, "output_index", None))
                if st is not None and getattr(event, "delta", None):
                    st[self._DELTAS[kind]].append(event.delta)
            elif kind == "error":
                self.error = event
        except Exception:  # noqa: BLE001 - never break the agent's stream
            pass

    def _items(self) -> list[Any]:
        output = _get(self.response, "output")
        if output and _get(self.response, "status") not in (None, "queued", "in_progress"):
            return list(output)
        items: list[Any] = []
        for index in sorted(self.done.keys() | self.partial.keys()):
            if index in self.done:
                items.append(self.done[index])
                continue
            st = self.partial[index]
            item = dict(st["item"]) if isinstance(st["item"], Mapping) else {}
            kind = item.get("type")
            if kind == "message":
                item["content"] = [{"type": "output_text", "text": "".join(st["text"])}]
            elif kind in _TOOL_CALL_ITEMS:
                item[_TOOL_CALL_ITEMS[kind]] = (item.get(_TOOL_CALL_ITEMS[kind]) or "") + "".join(st["arguments"])
            elif kind == "reasoning":
                item["content"] = [{"type": "reasoning_text", "text": "".join(st["reasoning"])}]
                item["summary"] = [{"type": "summary_text", "text": "".join(st["summary"])}]
            items.append(item)
        return items

    def _record(self, span: Any) -> None:
        self.inst._record_responses(span, self.response, self.history, items=self._items())
        if self.error is not None:
            span.set_attribute("error.type", str(_get(self.error, "code") or "stream_error"))
            span.set_status(Status(StatusCode.ERROR, str(_get(self.error, "message") or "stream error")[:500]))


class _TracedStream:
    """Behaves like ``openai.Stream``: iterate, ``with``, ``close()``; other attributes pass through."""

    def __init__(self, stream: Any, state: _StreamStateBase):
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

    def __init__(self, stream: Any, state: _StreamStateBase):
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
