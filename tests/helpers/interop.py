"""Comparing the trajectories that auditor assembles from each OpenAI instrumentation library:
run `helpers.interop_agent` in its own process per library, load what it wrote, and reduce a
trajectory to what an audit depends on (messages, tool calls, tool results, tool definitions,
actions), so two libraries' trajectories of the same run compare with ``==``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

from auditor.collectors.assemble import assemble_trajectories
from auditor.collectors.issues import LoadIssue
from auditor.collectors.readers import read_otlp_json
from auditor.collectors.spans import SpanRecord
from auditor.trajectory import Trajectory

ROOT = Path(__file__).resolve().parents[2]


def run_library(library: str, out: Path, base_url: str | None = None, timeout: float = 600,
                modes: Iterable[str] = (), variants: Iterable[str] = (), extra: Iterable[str] = ()) -> dict[str, Any]:
    """Every mode and variant of the scripted agent under ``library``, in a fresh interpreter."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, "-m", "helpers.interop_agent", "--library", library, "--out", str(out)]
    if base_url:
        cmd += ["--base-url", base_url]
    cmd += [a for m in modes for a in ("--mode", m)] + [a for v in variants for a in ("--variant", v)] + list(extra)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise AssertionError(f"{library} capture failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def read_spans(path: Path) -> list[SpanRecord]:
    """The spans of an OTLP JSON lines file; any problem reading it fails the test."""
    spans, issues = read_otlp_json(path)
    assert not issues, [str(i) for i in issues]
    return spans


def assemble(spans: list[SpanRecord]) -> tuple[list[Trajectory], list[LoadIssue]]:
    return assemble_trajectories(spans)


def _args(a: Any) -> Any:
    if isinstance(a, str):
        try:
            return json.loads(a)
        except json.JSONDecodeError:
            return a
    return a


def normalise(t: Trajectory) -> dict[str, Any]:
    """What an audit of ``t`` depends on, and nothing a library is free to differ in (span ids,
    timings, usage, which convention it wrote)."""
    msgs = []
    for m in t.messages:
        d: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.reasoning:
            d["reasoning"] = m.reasoning
        if m.tool_calls:
            d["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": _args(c.arguments)} for c in m.tool_calls]
        if m.tool_call_id:
            d["tool_call_id"] = m.tool_call_id
        msgs.append(d)
    return {
        "content_captured": t.content_captured,
        "tools": [{"name": d.name, "description": d.description, "parameters": d.parameters} for d in t.tools],
        "messages": msgs,
        "actions": [{"kind": a.kind.value, "message_index": a.message_index, "tool_call_id": a.tool_call_id,
                     "tool_name": a.tool_name, "arguments": _args(a.arguments)} for a in t.actions],
    }


def truth(exchanged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages an agent exchanged (OpenAI chat format), in `normalise`'s message shape."""
    out = []
    for m in exchanged:
        d: dict[str, Any] = {"role": m["role"], "content": m.get("content") or ""}
        if m.get("reasoning_content"):
            d["reasoning"] = m["reasoning_content"]
        if m.get("tool_calls"):
            d["tool_calls"] = [{"id": c["id"], "name": c["function"]["name"], "arguments": _args(c["function"]["arguments"])}
                               for c in m["tool_calls"]]
        if m.get("tool_call_id"):
            d["tool_call_id"] = m["tool_call_id"]
        out.append(d)
    return out


def diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Where ``a`` and ``b`` differ, one ``path: a -> b`` line each (for assertion messages)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in list(a) + [k for k in b if k not in a]:
            if k not in b:
                out.append(f"{path}.{k}: {_short(a[k])} -> (absent)")
            elif k not in a:
                out.append(f"{path}.{k}: (absent) -> {_short(b[k])}")
            else:
                out.extend(diff(a[k], b[k], f"{path}.{k}"))
        return out
    if isinstance(a, list) and isinstance(b, list):
        out = []
        for i in range(max(len(a), len(b))):
            if i >= len(a):
                out.append(f"{path}[{i}]: (absent) -> {_short(b[i])}")
            elif i >= len(b):
                out.append(f"{path}[{i}]: {_short(a[i])} -> (absent)")
            else:
                out.extend(diff(a[i], b[i], f"{path}[{i}]"))
        return out
    return [] if a == b else [f"{path}: {_short(a)} -> {_short(b)}"]


def _short(v: Any, n: int = 160) -> str:
    s = json.dumps(v, ensure_ascii=False, default=str)
    return s if len(s) <= n else s[:n] + "..."
