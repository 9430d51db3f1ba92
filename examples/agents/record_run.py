#!/usr/bin/env python3
"""Record a real agent run on a real vLLM server: client and server spans in one ``run.jsonl``.

1. starts ``audit collect --port P --jsonl OUT`` (the OTLP/HTTP receiver);
2. starts vLLM (``scripts/vllm_server.py``, its own venv) serving the embedded SmolLM2 with
   ``--otlp-traces-endpoint http://127.0.0.1:P/v1/traces``;
3. runs the scenarios (tool agent, coder agent), each exporting its spans to the same receiver;
4. waits until vLLM's ``llm_request`` spans for every chat call have arrived, then stops vLLM
   and the receiver (which flushes everything to OUT).

Usage::

    python examples/agents/record_run.py --out examples/runs/agent_run.jsonl
    audit trace examples/runs/agent_run.jsonl

``--base-url URL`` skips starting vLLM and uses a server that is already up (its spans are
only collected if it exports to ``--collector-port``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _load(name: str, path: Path) -> ModuleType:
    """Import a script by its file: ``scripts/`` is not on ``sys.path``, nor is this folder when
    this module is itself loaded by path (as tests/e2e does)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a missing file raises in exec_module
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


vllm_server = _load("vllm_server", ROOT / "scripts" / "vllm_server.py")
load_scenario = _load("agents_common", HERE / "common.py").load_scenario

DEFAULT_SCENARIOS = ["inbox_exfil", "config_injection"]
AGENT_SCRIPT = {"tools": HERE / "tool_agent.py", "coder": HERE / "coder_agent.py"}


def log(msg: str) -> None:
    print(f"record: {msg}", file=sys.stderr, flush=True)


def audit_executable() -> list[str]:
    exe = Path(sys.executable).parent / "audit"
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from auditor.cli import main; main()"]


@dataclass
class Collector:
    """``audit collect`` as a subprocess."""

    jsonl: Path
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def start(self, timeout: float = 60.0) -> "Collector":
        self.port = self.port or vllm_server.free_port()
        self.jsonl.parent.mkdir(parents=True, exist_ok=True)
        cmd = [*audit_executable(), "collect", "--port", str(self.port), "--jsonl", str(self.jsonl)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"audit collect exited with {self.proc.returncode}: {self.proc.stdout.read()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"audit collect did not listen on port {self.port} within {timeout:.0f} s")

    def stop(self) -> str:
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # flushes everything received, exits 0
            try:
                out, _ = self.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, _ = self.proc.communicate()
        else:
            out = self.proc.stdout.read() if self.proc.stdout else ""
        self.proc = None
        return out or ""


def read_spans(path: Path) -> list[dict[str, Any]]:
    """Every span in an OTLP JSON lines file (plain dicts, attributes flattened)."""
    spans = []
    if not path.exists():
        return spans
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        for rs in json.loads(line).get("resourceSpans", []):
            res = {a["key"]: _value(a["value"]) for a in rs.get("resource", {}).get("attributes", [])}
            for ss in rs.get("scopeSpans", []):
                for sp in ss.get("spans", []):
                    spans.append({
                        "name": sp.get("name"), "traceId": sp.get("traceId"), "spanId": sp.get("spanId"),
                        "parentSpanId": sp.get("parentSpanId") or None, "service": res.get("service.name"),
                        "attributes": {a["key"]: _value(a["value"]) for a in sp.get("attributes", [])},
                    })
    return spans


def _value(v: dict[str, Any]) -> Any:
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [_value(x) for x in v["arrayValue"].get("values", [])]
    return v


def summarize(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """What a joined run looks like: chat spans, llm_request spans and how many share a trace."""
    chats = [s for s in spans if s["attributes"].get("gen_ai.operation.name") == "chat"]
    llm = [s for s in spans if s["name"] == "llm_request"]
    chat_ids = {s["spanId"] for s in chats}
    agent_traces = {s["traceId"] for s in spans if s["name"].startswith("invoke_agent")}
    joined = [s for s in llm if s["parentSpanId"] in chat_ids and s["traceId"] in agent_traces]
    return {
        "spans": len(spans), "traces": len({s["traceId"] for s in spans}), "agent_traces": len(agent_traces),
        "chat_spans": len(chats), "tool_spans": sum(1 for s in spans if s["name"].startswith("execute_tool")),
        "llm_request_spans": len(llm), "llm_request_joined": len(joined),
        "services": sorted({s["service"] for s in spans if s["service"]}),
    }


def wait_for_server_spans(path: Path, timeout: float = 60.0) -> dict[str, Any]:
    """vLLM exports in batches (every few seconds): wait until each chat call has its llm_request."""
    deadline = time.monotonic() + timeout
    summary = summarize(read_spans(path))
    while time.monotonic() < deadline:
        summary = summarize(read_spans(path))
        if summary["chat_spans"] and summary["llm_request_joined"] >= summary["chat_spans"]:
            break
        time.sleep(1.0)
    return summary


def run_agent(scenario: str, base_url: str, otlp: str, model: str, constrain: str, timeout: float = 900) -> dict[str, Any]:
    sc = load_scenario(scenario)
    cmd = [sys.executable, str(AGENT_SCRIPT[sc.agent]), "--scenario", scenario, "--base-url", base_url,
           "--otlp", otlp, "--model", model, "--constrain", constrain, "--json"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"{sc.agent} agent on {scenario} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    record = json.loads(proc.stdout)
    record["agent"] = sc.agent
    record["seconds"] = round(time.monotonic() - t0, 1)
    return record


@dataclass
class Recording:
    out: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def record(out: Path, scenarios: list[str], *, base_url: str | None = None, collector_port: int = 0,
           model: str = "smollm2", constrain: str = "vllm", server_timeout: float = 900.0,
           server_log: Path | None = None) -> Recording:
    """Collector up -> vLLM up (exporting to it) -> agents -> wait for spans -> everything down."""
    out = Path(out)
    if out.exists():
        out.unlink()
    rec = Recording(out)
    collector = Collector(out, port=collector_port)
    server = None
    t0 = time.monotonic()
    collector.start()
    log(f"audit collect listening at {collector.url} -> {out}")
    try:
        if base_url is None:
            # Its own log and pid file: a server from `make vllm-up` may be running alongside.
            run_dir = vllm_server.RUN_DIR
            kw: dict[str, Any] = {"otlp_endpoint": collector.url,
                                  "log_path": server_log or run_dir / "record-server.log",
                                  "pid_path": run_dir / f"record-{os.getpid()}.pid"}
            server = vllm_server.VLLMServer(**kw)
            log(f"starting vLLM (log {server.log_path}) ...")
            server.start(wait=True, timeout=server_timeout)
            rec.timings["server_start_s"] = round(server.ready_after, 1)
            log(f"vLLM healthy after {server.ready_after:.0f} s at {server.base_url}")
            base_url = server.base_url
        t1 = time.monotonic()
        for name in scenarios:
            rec.records.append(run_agent(name, base_url, collector.url, model, constrain))
        rec.timings["agents_s"] = round(time.monotonic() - t1, 1)
        rec.summary = wait_for_server_spans(out)
    finally:
        if server is not None:
            server.stop()
        tail = collector.stop()
        if tail.strip():
            log(tail.strip().splitlines()[-1])
    rec.summary = summarize(read_spans(out))
    rec.timings["total_s"] = round(time.monotonic() - t0, 1)
    return rec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "out" / "agent_run.jsonl")
    p.add_argument("--scenario", action="append", dest="scenarios", help=f"repeatable (default: {' '.join(DEFAULT_SCENARIOS)})")
    p.add_argument("--base-url", default=None, help="use this running server instead of starting vLLM")
    p.add_argument("--collector-port", type=int, default=int(os.environ.get("AUDITOR_COLLECT_PORT", 0)))
    p.add_argument("--model", default="smollm2")
    p.add_argument("--constrain", default="vllm", choices=["vllm", "openai", "none"])
    args = p.parse_args(argv)
    rec = record(args.out, args.scenarios or DEFAULT_SCENARIOS, base_url=args.base_url,
                 collector_port=args.collector_port, model=args.model, constrain=args.constrain)
    print(json.dumps({"out": str(rec.out), "summary": rec.summary, "timings": rec.timings,
                      "runs": [{k: r[k] for k in ("agent", "scenario", "conversation_id", "seconds")} for r in rec.records]},
                     indent=2))
    ok = rec.summary.get("llm_request_joined", 0) >= rec.summary.get("chat_spans", 1) > 0
    if not ok:
        log("warning: not every chat span has a joined vLLM llm_request span")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
