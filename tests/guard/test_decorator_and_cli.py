"""`@guarded` tool functions (a blocked call never runs) and `audit guard` as a command: a tiny
model saved to disk, the proxy started as a subprocess, one request, a clean stop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest

from auditor.guard import GuardInputError, UnsupportedToolCall, guard_context, guarded
from auditor.testing import tiny_model, tiny_tokenizer

from helpers.fake_openai import FakeOpenAI
from helpers.guarding import MSGS


def test_a_blocked_tool_function_never_runs(guards):
    ran: list[str] = []

    @guarded(guards["strict"], messages=lambda: MSGS)
    def read_file(path: str) -> str:
        ran.append(path)
        return "contents"

    with pytest.raises(UnsupportedToolCall) as info:
        read_file("notes")
    assert ran == [] and info.value.verdict is read_file.last_verdict
    assert info.value.verdict.tool_name == "read_file" and info.value.verdict.arguments == {"path": "notes"}

    @guarded(guards["lenient"], messages=MSGS)
    def read_other(path: str) -> str:
        ran.append(path)
        return "contents"

    assert read_other(path="notes") == "contents" and ran == ["notes"] and read_other.last_verdict.allowed


def test_annotate_runs_and_records_the_verdict_on_the_current_span(guards, spans):
    provider, exporter = spans
    ran = []

    @guarded(guards["strict"], on_unsupported="annotate", name="read_file")
    def tool(path: str) -> str:
        ran.append(path)
        return "ok"

    with provider.get_tracer("t").start_as_current_span("execute_tool read_file"):
        with guard_context(MSGS):
            assert tool("a") == "ok"
    [span] = exporter.get_finished_spans()
    [event] = span.events
    assert ran == ["a"] and event.name == "auditor.guard.verdict" and event.attributes["auditor.guard.allowed"] is False
    with pytest.raises(GuardInputError, match="no conversation"):
        tool("b")  # outside any guard_context and without messages=


def test_async_tool_functions(guards):
    @guarded(guards["strict"], messages=MSGS)
    async def read_file(path: str) -> str:
        return "never"

    with pytest.raises(UnsupportedToolCall):
        asyncio.run(read_file("x"))


def test_the_call_in_the_agents_last_reply_is_the_one_judged(guards):
    """An agent that appended the model's reply before running its calls: the decorated call is
    judged in that reply (same name and arguments), as the model made it."""
    reply = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c7", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "notes"}'}}]}

    @guarded(guards["lenient"], messages=MSGS + [reply])
    def read_file(path: str) -> str:
        return "ok"

    read_file("notes")
    assert read_file.last_verdict.tool_call_id == "c7"


# -- audit guard, the command --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tiny-llama")
    tiny_model("llama").save_pretrained(d)
    tiny_tokenizer().save_pretrained(d)
    return d


def audit_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "audit"
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from auditor.cli import main; main()"]


def test_audit_guard_serves_and_stops(model_dir, tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    with FakeOpenAI() as upstream:
        proc = subprocess.Popen([*audit_cmd(), "guard", "--upstream", upstream.base_url, "--port", "0",
                                 "--model", str(model_dir), "--hops", "0", "--jsonl", str(tmp_path / "verdicts.jsonl")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
        try:
            line = proc.stdout.readline()
            assert line.startswith("guarding ") and "on http://127.0.0.1:" in line, line + proc.stderr.read()
            url = line.split(" on ")[1].split(" ")[0]
            c = openai.OpenAI(base_url=url, api_key="k", max_retries=0, timeout=120)
            reply = c.chat.completions.create(model="m", messages=MSGS, tools=[
                {"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}])
            assert reply.model_extra["auditor_guard"]["verdicts"][0]["tool_name"] == "read_file"
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped: 1 requests, 1 tool calls judged" in out
    deadline = time.monotonic() + 5
    while not (tmp_path / "verdicts.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "auditor.guard.verdict read_file" in (tmp_path / "verdicts.jsonl").read_text()


def test_audit_guard_usage_errors():
    from typer.testing import CliRunner

    from auditor.cli import app

    r = CliRunner().invoke(app, ["guard", "--upstream", "http://127.0.0.1:1/v1", "--on-block", "drop"])
    assert r.exit_code == 2 and "--on-block must be one of message, error" in r.output
    r = CliRunner().invoke(app, ["guard", "--upstream", "http://127.0.0.1:1/v1", "--state-dtype", "int8"])
    assert r.exit_code == 2 and "--state-dtype" in r.output
