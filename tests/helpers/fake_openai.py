"""A tiny OpenAI-compatible server on 127.0.0.1 (stdlib http.server in a thread) for driving
the real ``openai`` client in tests without vLLM: ``/v1/chat/completions`` and the Responses
API's ``/v1/responses`` (vLLM serves both), each plain JSON or SSE streaming.

Replies are scripted: ``script(request_json) -> reply dict`` (``content``, ``tool_calls`` in the
chat shape, ``reasoning_content``); the Responses endpoint turns a reply into output items
(``reasoning``, ``message``, ``function_call``; ``status``/``incomplete``/``error`` and
``omit_final_output`` when the reply sets them) and streams the event sequence the OpenAI
server sends (``response.created``, ``response.in_progress``, ``response.output_item.added``,
``response.content_part.added``, ``response.output_text.delta``, ...,
``response.output_item.done``, ``response.completed``). When a ``vllm_provider`` is given it
also plays vLLM's part of the trace: an ``llm_request`` SERVER span, child of the W3C
``traceparent`` the client sent.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


def n_inputs(req: dict[str, Any]) -> int:
    """Messages (chat) or input items (+ instructions; Responses) of a request: the fake usage."""
    if "messages" in req:
        return len(req["messages"])
    items = req.get("input")
    return (1 if isinstance(items, str) else len(items or [])) + (1 if req.get("instructions") else 0)


def tool_result(req: dict[str, Any]) -> str | None:
    """The request's last item when it is a tool result (chat ``tool`` message or Responses
    ``function_call_output``), else None."""
    if "messages" in req:
        last = req["messages"][-1]
        return last["content"] if last.get("role") == "tool" else None
    items = req.get("input")
    if isinstance(items, list) and items and items[-1].get("type") == "function_call_output":
        return items[-1]["output"]
    return None


def default_script(req: dict[str, Any]) -> dict[str, Any]:
    """First turn: call read_file; after a tool result: answer."""
    result = tool_result(req)
    if result is not None:
        return {"content": f"The file says: {result}"}
    return {"content": None, "tool_calls": [
        {"id": f"call_{n_inputs(req)}", "type": "function",
         "function": {"name": "read_file", "arguments": json.dumps({"path": "notes.txt"})}}]}


def output_items(rid: str, reply: dict[str, Any]) -> list[dict[str, Any]]:
    """A scripted reply as Responses API output items (all finished)."""
    items: list[dict[str, Any]] = []
    if reply.get("reasoning_content"):
        items.append({"id": f"rs_{rid}", "type": "reasoning", "status": "completed",
                      "summary": [{"type": "summary_text", "text": reply["reasoning_content"]}]})
    if reply.get("content"):
        items.append({"id": f"msg_{rid}", "type": "message", "role": "assistant", "status": "completed",
                      "content": [{"type": "output_text", "text": reply["content"], "annotations": [],
                                   "logprobs": []}]})
    for k, call in enumerate(reply.get("tool_calls") or []):
        items.append({"id": f"fc_{rid}_{k}", "type": "function_call", "status": "completed", "call_id": call["id"],
                      "name": call["function"]["name"], "arguments": call["function"]["arguments"]})
    return items


def response_object(body: dict[str, Any], rid: str, reply: dict[str, Any], status: str | None = None,
                    output: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The ``Response`` JSON of a scripted reply (``status``/``output`` override it, for the
    snapshots sent while streaming)."""
    status = status or reply.get("status", "completed")
    data: dict[str, Any] = {
        "id": rid, "object": "response", "created_at": int(time.time()), "model": body["model"],
        "status": status, "output": output_items(rid, reply) if output is None else output,
        "instructions": body.get("instructions"), "parallel_tool_calls": True, "tool_choice": "auto",
        "tools": body.get("tools") or [], "temperature": body.get("temperature"), "error": reply.get("error"),
        "incomplete_details": {"reason": reply["incomplete"]} if reply.get("incomplete") else None,
        "previous_response_id": body.get("previous_response_id"),
    }
    if status in ("completed", "incomplete"):
        data["usage"] = {"input_tokens": 11 * n_inputs(body), "output_tokens": 7, "total_tokens": 0,
                         "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                         "output_tokens_details": {"reasoning_tokens": 0}}
    return data


def response_events(body: dict[str, Any], rid: str, reply: dict[str, Any]) -> list[dict[str, Any]]:
    """The SSE events of a streamed scripted reply, in the order the OpenAI server sends them."""
    events: list[dict[str, Any]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append({"type": kind, "sequence_number": len(events), **fields})

    emit("response.created", response=response_object(body, rid, reply, "in_progress", []))
    emit("response.in_progress", response=response_object(body, rid, reply, "in_progress", []))
    for index, item in enumerate(output_items(rid, reply)):
        kind = item["type"]
        if kind == "reasoning":
            emit("response.output_item.added", output_index=index,
                 item={**item, "summary": [], "status": "in_progress"})
            text = item["summary"][0]["text"]
            emit("response.reasoning_summary_part.added", item_id=item["id"], output_index=index, summary_index=0,
                 part={"type": "summary_text", "text": ""})
            for i in range(0, len(text), 6):
                emit("response.reasoning_summary_text.delta", item_id=item["id"], output_index=index,
                     summary_index=0, delta=text[i:i + 6])
            emit("response.reasoning_summary_text.done", item_id=item["id"], output_index=index, summary_index=0,
                 text=text)
            emit("response.reasoning_summary_part.done", item_id=item["id"], output_index=index, summary_index=0,
                 part={"type": "summary_text", "text": text})
        elif kind == "message":
            emit("response.output_item.added", output_index=index,
                 item={**item, "content": [], "status": "in_progress"})
            text = item["content"][0]["text"]
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            emit("response.content_part.added", item_id=item["id"], output_index=index, content_index=0, part=part)
            for i in range(0, len(text), 5):
                emit("response.output_text.delta", item_id=item["id"], output_index=index, content_index=0,
                     delta=text[i:i + 5], logprobs=[])
            emit("response.output_text.done", item_id=item["id"], output_index=index, content_index=0, text=text,
                 logprobs=[])
            emit("response.content_part.done", item_id=item["id"], output_index=index, content_index=0,
                 part={**part, "text": text})
        else:  # function_call
            emit("response.output_item.added", output_index=index,
                 item={**item, "arguments": "", "status": "in_progress"})
            args = item["arguments"]
            for i in range(0, len(args), 4):
                emit("response.function_call_arguments.delta", item_id=item["id"], output_index=index,
                     delta=args[i:i + 4])
            emit("response.function_call_arguments.done", item_id=item["id"], output_index=index, arguments=args,
                 name=item["name"])
        emit("response.output_item.done", output_index=index, item=item)
    final = response_object(body, rid, reply)
    if reply.get("omit_final_output"):  # servers may leave the items out of the final event
        del final["output"]
    emit(f"response.{final['status']}", response=final)
    return events


class FakeOpenAI:
    def __init__(self, script: Callable[[dict[str, Any]], dict[str, Any]] = default_script, vllm_provider: Any = None):
        self.script = script
        self.vllm_provider = vllm_provider
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._count = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n) or b"{}")
                responses = self.path.rstrip("/").endswith("/responses")
                with outer._lock:
                    outer._count += 1
                    rid = f"{'resp' if responses else 'chatcmpl'}-{outer._count}"
                    outer.requests.append(body)
                    outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                reply = outer.script(body)
                started = time.time_ns()
                if responses and body.get("stream"):
                    self._responses_stream(body, rid, reply)
                elif responses:
                    self._send_json(response_object(body, rid, reply))
                elif body.get("stream"):
                    self._stream(body, rid, reply)
                else:
                    self._plain(body, rid, reply)
                outer._vllm_span(self.headers, body, rid, started, reply)

            def _send_json(self, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _responses_stream(self, body: dict[str, Any], rid: str, reply: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for event in response_events(body, rid, reply):
                        self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):  # the client closed the stream early
                    pass
                self.close_connection = True

            def _plain(self, body: dict[str, Any], rid: str, reply: dict[str, Any]) -> None:
                msg = {"role": "assistant", "content": reply.get("content")}
                if reply.get("tool_calls"):
                    msg["tool_calls"] = reply["tool_calls"]
                if reply.get("reasoning_content"):
                    msg["reasoning_content"] = reply["reasoning_content"]
                data = {
                    "id": rid, "object": "chat.completion", "created": int(time.time()), "model": body["model"],
                    "choices": [{"index": 0, "message": msg,
                                 "finish_reason": "tool_calls" if reply.get("tool_calls") else "stop"}],
                    "usage": {"prompt_tokens": 11 * n_inputs(body), "completion_tokens": 7, "total_tokens": 0},
                }
                raw = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _stream(self, body: dict[str, Any], rid: str, reply: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                base = {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": body["model"]}

                def send(delta: dict[str, Any], finish: str | None = None, usage: dict | None = None) -> None:
                    chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                    if usage is not None:
                        chunk = {**base, "choices": [], "usage": usage}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()

                send({"role": "assistant", "content": ""})
                if reply.get("reasoning_content"):
                    send({"reasoning_content": reply["reasoning_content"]})
                text = reply.get("content") or ""
                for i in range(0, len(text), 5):
                    send({"content": text[i:i + 5]})
                for k, call in enumerate(reply.get("tool_calls") or []):
                    args = call["function"]["arguments"]
                    send({"tool_calls": [{"index": k, "id": call["id"], "type": "function",
                                          "function": {"name": call["function"]["name"], "arguments": ""}}]})
                    for i in range(0, len(args), 4):
                        send({"tool_calls": [{"index": k, "function": {"arguments": args[i:i + 4]}}]})
                send({}, "tool_calls" if reply.get("tool_calls") else "stop")
                if (body.get("stream_options") or {}).get("include_usage"):
                    send({}, usage={"prompt_tokens": 11 * n_inputs(body), "completion_tokens": 7,
                                    "total_tokens": 0})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _vllm_span(self, headers: Any, body: dict[str, Any], rid: str, started: int, reply: dict[str, Any]) -> None:
        if self.vllm_provider is None:
            return
        ctx = TraceContextTextMapPropagator().extract({k.lower(): v for k, v in headers.items()})
        tracer = self.vllm_provider.get_tracer("vllm.llm_engine")
        span = tracer.start_span("llm_request", context=ctx, kind=SpanKind.SERVER, start_time=started, attributes={
            "gen_ai.request.id": rid,
            "gen_ai.response.model": body["model"],
            "gen_ai.usage.prompt_tokens": 11 * n_inputs(body),
            "gen_ai.usage.completion_tokens": 7,
            "gen_ai.latency.time_to_first_token": 0.012,
            "gen_ai.latency.e2e": 0.034,
            "gen_ai.latency.time_in_queue": 0.001,
            "gen_ai.latency.time_in_model_prefill": 0.01,
            "gen_ai.latency.time_in_model_decode": 0.02,
            "gen_ai.latency.time_in_model_inference": 0.03,
            "gen_ai.request.max_tokens": int(body.get("max_tokens") or 256),
            "gen_ai.request.n": 1,
            "gen_ai.response.finish_reasons": ["tool_calls" if reply.get("tool_calls") else "stop"],
        })
        span.end()

    def __enter__(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
