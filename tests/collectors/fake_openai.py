"""A tiny OpenAI-compatible chat-completions server on 127.0.0.1 (stdlib http.server in a
thread) for driving the real ``openai`` client in tests without vLLM.

Replies are scripted: ``script(request_json) -> reply dict`` (``content``, ``tool_calls``,
``reasoning_content``). When a ``vllm_provider`` is given it also plays vLLM's part of the
trace: an ``llm_request`` SERVER span, child of the W3C ``traceparent`` the client sent.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


def default_script(req: dict[str, Any]) -> dict[str, Any]:
    """First turn: call read_file; after a tool result: answer."""
    last = req["messages"][-1]
    if last["role"] == "tool":
        return {"content": f"The file says: {last['content']}"}
    return {"content": None, "tool_calls": [
        {"id": f"call_{len(req['messages'])}", "type": "function",
         "function": {"name": "read_file", "arguments": json.dumps({"path": "notes.txt"})}}]}


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
                with outer._lock:
                    outer._count += 1
                    rid = f"chatcmpl-{outer._count}"
                    outer.requests.append(body)
                    outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                reply = outer.script(body)
                started = time.time_ns()
                if body.get("stream"):
                    self._stream(body, rid, reply)
                else:
                    self._plain(body, rid, reply)
                outer._vllm_span(self.headers, body, rid, started, reply)

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
                    "usage": {"prompt_tokens": 11 * len(body["messages"]), "completion_tokens": 7, "total_tokens": 0},
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
                    send({}, usage={"prompt_tokens": 11 * len(body["messages"]), "completion_tokens": 7,
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
            "gen_ai.usage.prompt_tokens": 11 * len(body["messages"]),
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
