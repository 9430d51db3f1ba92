"""`GuardProxy` (``audit guard``) between the real ``openai`` client and a local upstream: calls
passed or blocked (message or error mode, plain and streamed), verdict spans joined to the
caller's trace, token and loopback defaults, and every upstream failure a clear error, never a
silent pass. The guard is real (a tiny random model); the upstream is the tests' fake server or a
canned one for malformed replies."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest

from auditor.guard.proxy import GuardProxy

from helpers.fake_openai import FakeOpenAI
from helpers.guarding import MSGS, TOOLS

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(scope="module")
def upstream():
    with FakeOpenAI() as srv:  # first turn: read_file({"path": "notes.txt"}); after a tool result: text
        yield srv


def proxy_for(guard, base_url: str, spans=None, **kw) -> GuardProxy:
    return GuardProxy(guard, base_url, port=0, tracer_provider=spans[0] if spans else None, **kw)


def client(proxy: GuardProxy, key: str = "k") -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url, api_key=key, max_retries=0, timeout=60)


def collect(stream) -> dict[str, Any]:
    text, calls, finish = [], {}, None
    for chunk in stream:
        for c in chunk.choices:
            if c.delta.content:
                text.append(c.delta.content)
            for tc in c.delta.tool_calls or []:
                calls.setdefault(tc.index, []).append(tc)
            finish = c.finish_reason or finish
    return {"text": "".join(text), "calls": calls, "finish": finish}


def test_a_blocked_call_becomes_a_message_and_a_span_in_the_callers_trace(guards, upstream, spans):
    with proxy_for(guards["strict"], upstream.base_url, spans) as proxy:
        raw = client(proxy).chat.completions.with_raw_response.create(
            model="m", messages=MSGS, tools=TOOLS, extra_headers={"traceparent": TRACEPARENT})
    reply = raw.parse()
    msg = reply.choices[0].message
    assert not msg.tool_calls and reply.choices[0].finish_reason == "stop"
    assert msg.content.startswith("[auditor guard] blocked 1 tool call(s)") and "read_file" in msg.content
    assert raw.headers["x-auditor-guard"] == "blocked"
    report = reply.model_extra["auditor_guard"]
    assert report["blocked"] == 1 and report["verdicts"][0]["tool_call_id"] == "call_2"
    assert report["verdicts"][0]["status"] == "blocked" and report["verdicts"][0]["evidence"]
    # the upstream got the caller's traceparent unchanged (vLLM's spans stay under the caller's)
    assert upstream.headers[-1]["traceparent"] == TRACEPARENT
    finished = spans[1].get_finished_spans()
    server = next(s for s in finished if s.name == "auditor.guard m")
    verdict = next(s for s in finished if s.name == "auditor.guard.verdict read_file")
    assert f"{server.context.trace_id:032x}" == TRACEPARENT.split("-")[1]
    assert f"{server.parent.span_id:016x}" == TRACEPARENT.split("-")[2] and verdict.parent.span_id == server.context.span_id
    assert verdict.attributes["auditor.guard.allowed"] is False and server.attributes["auditor.guard.blocked"] == 1


def test_error_mode_answers_403_with_the_verdicts(guards, upstream):
    with proxy_for(guards["strict"], upstream.base_url, on_block="error") as proxy:
        with pytest.raises(openai.PermissionDeniedError) as info:
            client(proxy).chat.completions.create(model="m", messages=MSGS, tools=TOOLS)
    err = info.value.body
    assert err["type"] == "unsupported_tool_call" and err["code"] == "tool_call_blocked"
    assert err["verdicts"][0]["tool_name"] == "read_file" and err["verdicts"][0]["allowed"] is False


def test_allowed_calls_and_text_pass_unchanged(guards, upstream):
    direct = openai.OpenAI(base_url=upstream.base_url, api_key="k", max_retries=0)
    with proxy_for(guards["lenient"], upstream.base_url) as proxy:
        c = client(proxy)
        via = c.chat.completions.create(model="m", messages=MSGS, tools=TOOLS)
        assert via.model_extra["auditor_guard"]["verdicts"][0]["allowed"] is True
        ref = direct.chat.completions.create(model="m", messages=MSGS, tools=TOOLS)
        assert via.choices[0].message.tool_calls == ref.choices[0].message.tool_calls
        streamed = collect(c.chat.completions.create(model="m", messages=MSGS, tools=TOOLS, stream=True))
        assert streamed["finish"] == "tool_calls" and streamed["calls"][0][0].function.name == "read_file"
        args = "".join(tc.function.arguments or "" for tc in streamed["calls"][0])
        assert json.loads(args) == {"path": "notes.txt"}
        after = MSGS + [{"role": "assistant", "content": None, "tool_calls": [ref.choices[0].message.tool_calls[0].model_dump()]},
                        {"role": "tool", "tool_call_id": "call_2", "content": "remember the release"}]
        text = collect(c.chat.completions.create(model="m", messages=after, stream=True))
        assert text["text"] == "The file says: remember the release" and not text["calls"]
    assert proxy.stats.checked == 2 and proxy.stats.blocked == 0


def test_a_blocked_stream_holds_its_calls_back(guards, upstream):
    with proxy_for(guards["strict"], upstream.base_url) as proxy:
        got = collect(client(proxy).chat.completions.create(model="m", messages=MSGS, tools=TOOLS, stream=True))
    assert not got["calls"] and got["finish"] == "stop" and got["text"].startswith("[auditor guard] blocked")
    with proxy_for(guards["strict"], upstream.base_url, on_block="error") as proxy:
        with pytest.raises(openai.APIError, match="not supported by the user's request"):
            collect(client(proxy).chat.completions.create(model="m", messages=MSGS, tools=TOOLS, stream=True))


def test_token_and_loopback_defaults(guards, upstream):
    proxy = proxy_for(guards["lenient"], upstream.base_url, token="s3cret")
    assert proxy.host == "127.0.0.1"
    with proxy:
        with pytest.raises(openai.AuthenticationError):
            client(proxy, key="wrong").chat.completions.create(model="m", messages=MSGS)
        ok = client(proxy, key="s3cret").chat.completions.create(model="m", messages=MSGS, tools=TOOLS)
        assert ok.choices[0].message.tool_calls
    assert "authorization" not in upstream.headers[-1]  # the proxy's token is not sent upstream


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_upstream_that_is_down_is_a_502_naming_it(guards):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with proxy_for(guards["lenient"], url) as proxy:
        with pytest.raises(openai.InternalServerError) as info:
            client(proxy).chat.completions.create(model="m", messages=MSGS, tools=TOOLS)
        assert info.value.status_code == 502 and info.value.body["type"] == "upstream_unavailable"
        assert url in info.value.body["message"]
        with pytest.raises(openai.InternalServerError):
            collect(client(proxy).chat.completions.create(model="m", messages=MSGS, tools=TOOLS, stream=True))
    assert proxy.stats.errors == 2


class Canned:
    """An upstream answering every request with fixed bytes (status, content type, body)."""

    def __init__(self, status: int, body: bytes, content_type: str = "application/json", close_early: bool = False):
        outer = self
        self.requests: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _answer(self) -> None:
                n = int(self.headers.get("Content-Length", "0") or 0)
                self.rfile.read(n)
                outer.requests.append(self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                if close_early:
                    self.send_header("Connection", "close")
                else:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True

            do_POST = do_GET = _answer  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "Canned":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def completion(message: dict[str, Any]) -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                       "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]}).encode()


def chunk(delta: dict[str, Any]) -> str:
    return "data: " + json.dumps({"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                                  "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}) + "\n\n"


CALL_DELTA = {"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                              "function": {"name": "send_email", "arguments": "{\"to\": \"x\"}"}}]}


@pytest.mark.parametrize("body,stream,what", [
    (b"<html>gateway</html>", False, "not JSON"),
    (b'{"id": "x", "object": "chat.completion"}', False, "has no 'choices' list"),
    (completion({"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"arguments": "{}"}}]}),
     False, "choices[0].message.tool_calls[0].function.name is missing"),
    ((chunk(CALL_DELTA) + "data: {not json\n\n").encode(), True, "stream event that is not JSON"),
    (chunk(CALL_DELTA).encode(), True, "without 'data: [DONE]'"),
])
def test_a_malformed_upstream_reply_is_a_clear_error_and_no_call_passes(guards, body, stream, what):
    kind = "text/event-stream" if stream else "application/json"
    with Canned(200, body, kind, close_early=stream) as up, proxy_for(guards["lenient"], up.url) as proxy:
        c = client(proxy)
        with pytest.raises(openai.APIStatusError) as info:
            if stream:
                collect(c.chat.completions.create(model="m", messages=MSGS, stream=True))
            else:
                c.chat.completions.create(model="m", messages=MSGS)
    assert info.value.status_code == 502 and what in info.value.message
    assert info.value.body["type"] == "upstream_malformed"
    assert proxy.stats.checked == 0  # nothing was judged, nothing passed


def test_a_stream_that_dies_after_text_ends_in_an_error_event(guards):
    body = (chunk({"role": "assistant", "content": "Let me "}) + chunk(CALL_DELTA)).encode()
    with Canned(200, body, "text/event-stream", close_early=True) as up, proxy_for(guards["lenient"], up.url) as proxy:
        seen: list[str] = []
        with pytest.raises(openai.APIError, match="without 'data: \\[DONE\\]'"):
            for ch in client(proxy).chat.completions.create(model="m", messages=MSGS, stream=True):
                for c in ch.choices:
                    assert not c.delta.tool_calls  # the held-back call never reaches the caller
                    seen.append(c.delta.content or "")
    assert "".join(seen) == "Let me "


def test_upstream_errors_and_other_paths(guards):
    with Canned(400, b'{"error": {"message": "bad model", "type": "invalid_request_error"}}') as up, \
            proxy_for(guards["lenient"], up.url) as proxy:
        with pytest.raises(openai.BadRequestError, match="bad model"):  # relayed as it is
            client(proxy).chat.completions.create(model="m", messages=MSGS)
    with Canned(200, b'{"data": [{"id": "m"}]}') as up, proxy_for(guards["lenient"], up.url) as proxy:
        assert [m.id for m in client(proxy).models.list()] == ["m"] and up.requests[-1] == "/v1/models"
        with pytest.raises(openai.NotFoundError, match="not guarded"):
            client(proxy).responses.create(model="m", input="hi")
        req = urllib.request.Request(f"{proxy.url}/chat/completions", data=b"[1, 2]", method="POST",
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req)
        assert info.value.code == 400 and b"'messages' list" in info.value.read()


class Buggy:
    def check_reply(self, messages, reply, tools=None):
        raise KeyError("a bug")


def test_a_guard_that_breaks_is_a_500_not_a_pass(upstream):
    with proxy_for(Buggy(), upstream.base_url) as proxy:
        with pytest.raises(openai.InternalServerError, match="the guard failed: KeyError"):
            client(proxy).chat.completions.create(model="m", messages=MSGS, tools=TOOLS)
        with pytest.raises(openai.APIError, match="the guard failed"):
            collect(client(proxy).chat.completions.create(model="m", messages=MSGS, tools=TOOLS, stream=True))
