"""Streamed OpenAI calls: `TracedStream` / `TracedAsyncStream` stand in for ``openai.Stream`` /
``AsyncStream`` and feed every event to a stream state, which rebuilds the final message(s)
(`ChatStreamState` from chat completion chunks, `ResponsesStreamState` from Responses API events)
and records them on the span when the stream ends, is closed early or fails. With a guard
(``state.judge``), a stream that ends normally has its tool calls judged before its end reaches
the caller: the caller's loop gets `UnsupportedToolCall` instead of the end of the stream.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Mapping

from opentelemetry.trace import Status, StatusCode

from auditor.collectors.capture import as_plain, to_json
from auditor.collectors.genai_messages import TOOL_CALL_ITEMS, choice_output, get_field
from auditor.collectors.openai_results import Recorder, record_error, record_response


class StreamState:
    """Accumulates a stream's events (``add``); ``finish`` records them on the span (``_record``)
    and ends it, exactly once, whether the stream was consumed, closed early or failed."""

    def __init__(self, inst: Recorder, span: Any):
        self.inst = inst
        self.span = span
        self._ended = False
        self._lock = threading.Lock()
        # the guard's hook: the state at the stream's end -> the exception to raise instead of the end
        self.judge: Callable[["StreamState"], BaseException | None] | None = None

    def add(self, event: Any) -> None:
        raise NotImplementedError

    def _record(self, span: Any) -> None:
        raise NotImplementedError

    def finish(self, exc: BaseException | None = None, judged: bool = False) -> BaseException | None:
        """Record and end the span (once). ``judged``: the stream ended normally, so its tool calls
        go to the guard first; returns what the guard says to raise instead of the end."""
        with self._lock:
            if self._ended:
                return None
            self._ended = True
        span = self.span
        blocked = None
        try:
            self._record(span)
            if exc is not None:
                record_error(span, exc)
            if judged and exc is None and self.judge is not None:
                blocked = self.judge(self)
        finally:
            span.end()
        return blocked


class ChatStreamState(StreamState):
    """Chat completions: chunks -> the final messages."""

    def __init__(self, inst: Recorder, span: Any):
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

    def replies(self) -> list[dict[str, Any]]:
        """The streamed assistant messages that carry tool calls, in the chat wire format."""
        out = []
        for _, st in sorted(self.choices.items()):
            if st["calls"]:
                out.append({"role": "assistant", "content": "".join(st["content"]) or None,
                            "tool_calls": [{"id": call["id"], "type": "function",
                                            "function": {"name": call["name"], "arguments": "".join(call["arguments"])}}
                                           for _, call in sorted(st["calls"].items())]})
        return out

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
                out.append(choice_output(msg, st["finish"]))
            span.set_attribute("gen_ai.output.messages", to_json(out))


class ResponsesStreamState(StreamState):
    """Responses API: typed events -> the final response. The ``response.completed`` (or
    ``.incomplete`` / ``.failed``) event's response is used as is; its output items, when the
    event leaves them out, and the output of a stream closed early are rebuilt from the
    ``response.output_item.*`` and delta events."""

    _LIFECYCLE = ("response.created", "response.queued", "response.in_progress", "response.completed",
                  "response.incomplete", "response.failed")
    _DELTAS = {"response.output_text.delta": "text", "response.function_call_arguments.delta": "arguments",
               "response.custom_tool_call_input.delta": "arguments", "response.reasoning_text.delta": "reasoning",
               "response.reasoning_summary_text.delta": "summary"}

    def __init__(self, inst: Recorder, span: Any, history: list[dict[str, Any]] | None):
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
                self.partial[event.output_index] = {"item": as_plain(event.item), "text": [], "arguments": [],
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

    def items(self) -> list[Any]:
        return self._items()

    def _items(self) -> list[Any]:
        output = get_field(self.response, "output")
        if output and get_field(self.response, "status") not in (None, "queued", "in_progress"):
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
            elif kind in TOOL_CALL_ITEMS:
                item[TOOL_CALL_ITEMS[kind]] = (item.get(TOOL_CALL_ITEMS[kind]) or "") + "".join(st["arguments"])
            elif kind == "reasoning":
                item["content"] = [{"type": "reasoning_text", "text": "".join(st["reasoning"])}]
                item["summary"] = [{"type": "summary_text", "text": "".join(st["summary"])}]
            items.append(item)
        return items

    def _record(self, span: Any) -> None:
        record_response(self.inst, span, self.response, self.history, items=self._items())
        if self.error is not None:
            span.set_attribute("error.type", str(get_field(self.error, "code") or "stream_error"))
            span.set_status(Status(StatusCode.ERROR, str(get_field(self.error, "message") or "stream error")[:500]))


class TracedStream:
    """Behaves like ``openai.Stream``: iterate, ``with``, ``close()``; other attributes pass through."""

    def __init__(self, stream: Any, state: StreamState):
        self._stream = stream
        self._state = state

    def __iter__(self) -> "TracedStream":
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._stream)
        except StopIteration:
            blocked = self._state.finish(judged=True)
            if blocked is not None:
                raise blocked from None
            raise
        except BaseException as exc:
            self._state.finish(exc)
            raise
        self._state.add(chunk)
        return chunk

    def __enter__(self) -> "TracedStream":
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


class TracedAsyncStream:
    """Behaves like ``openai.AsyncStream``."""

    def __init__(self, stream: Any, state: StreamState):
        self._stream = stream
        self._state = state

    def __aiter__(self) -> "TracedAsyncStream":
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            # the guard runs a model: off the event loop
            blocked = await asyncio.to_thread(self._state.finish, None, True)
            if blocked is not None:
                raise blocked from None
            raise
        except BaseException as exc:
            self._state.finish(exc)
            raise
        self._state.add(chunk)
        return chunk

    async def __aenter__(self) -> "TracedAsyncStream":
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
