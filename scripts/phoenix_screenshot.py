"""Write ``docs/phoenix-trace.png``: auditor's verdicts in Arize Phoenix's trace view.

Starts Phoenix (``.venv-phoenix``, scripts/phoenix_server.py) in a fresh working directory, sends
it the recorded real vLLM agent run ``examples/runs/agent_run.jsonl`` (OTLP/HTTP protobuf, project
``auditor``), runs ``audit trace`` on the same file with ``--export-otlp`` (evaluation spans) and
``--export-phoenix`` (span annotations), and takes a headless Chromium screenshot of the tool
agent's trace with its ``send_email`` span selected: the ``auditor.support`` annotation (label,
score) on the span and the evaluation span under it. Stops Phoenix.

    python scripts/phoenix_screenshot.py                    # make phoenix-screenshot
    python scripts/phoenix_screenshot.py --out shot.png --keep   # leave Phoenix running to look around
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import ModuleType

from auditor.report.browser import ChromiumNotFound, require_chromium, run_chromium

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "examples" / "runs" / "agent_run.jsonl"
PROJECT = "auditor"


def _phoenix_server() -> ModuleType:
    spec = importlib.util.spec_from_file_location("phoenix_server", ROOT / "scripts" / "phoenix_server.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["phoenix_server"] = module
    spec.loader.exec_module(module)
    return module


def send_spans(path: Path, traces_url: str, project: str) -> int:
    """An OTLP JSON lines file to an OTLP/HTTP endpoint as protobuf (Phoenix takes no JSON), each
    span's resource naming the Phoenix project."""
    from auditor.collectors.otlp_proto import to_otlp_proto
    from auditor.collectors.readers import read_otlp_json

    spans, issues = read_otlp_json(path)
    if issues:
        raise SystemExit(f"{path}: {issues[0]}")
    spans = [s.model_copy(update={"resource": {**s.resource, "openinference.project.name": project}}) for s in spans]
    body = to_otlp_proto(spans).SerializeToString()
    req = urllib.request.Request(traces_url, data=body, method="POST",
                                 headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status != 200:
            raise SystemExit(f"{traces_url} answered {r.status}")
    return len(spans)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/phoenix_screenshot.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "docs" / "phoenix-trace.png"), help="PNG to write.")
    p.add_argument("--size", default="1600,1000", help="Window size WIDTH,HEIGHT.")
    p.add_argument("--keep", action="store_true", help="Leave Phoenix running (stop: scripts/phoenix_server.py stop).")
    args = p.parse_args(argv)
    width, height = (int(x) for x in args.size.split(","))
    try:
        require_chromium()
    except ChromiumNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    px_mod = _phoenix_server()
    tmp = Path(tempfile.mkdtemp(prefix="auditor-phoenix-"))
    server = px_mod.PhoenixServer(workdir=tmp / "workdir", log_path=tmp / "server.log",
                                  pid_path=px_mod.RUN_DIR / "server.pid")
    server.start()
    print(f"phoenix healthy after {server.ready_after:.0f} s at {server.base_url}")
    try:
        print(f"sent {send_spans(RUN, server.traces_url, PROJECT)} spans of {RUN.relative_to(ROOT)}")
        exe = Path(sys.executable).parent / "audit"
        t0 = time.monotonic()
        proc = subprocess.run([str(exe), "trace", str(RUN), "--db", str(tmp / "audit.duckdb"), "--json",
                               "--export-otlp", server.traces_url, "--export-phoenix", server.base_url],
                              capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        print(f"audit trace + export: {time.monotonic() - t0:.0f} s; {json.loads(proc.stdout)['exported']}")
        project = _get(f"{server.base_url}/v1/projects/{PROJECT}")["data"]["id"]
        spans: list[dict] = []
        for _ in range(60):  # the evaluation spans are ingested asynchronously
            spans = _get(f"{server.base_url}/v1/projects/{PROJECT}/spans?limit=200")["data"]
            if any(s["name"] == "evaluation auditor.support" for s in spans):
                break
            time.sleep(0.5)
        send = next(s for s in spans if s["name"] == "execute_tool send_email")
        url = (f"{server.base_url}/projects/{project}/traces/{send['context']['trace_id']}"
               f"?selectedSpanNodeId={send['id']}")
        png = Path(args.out).resolve()
        png.unlink(missing_ok=True)
        shot = run_chromium(["--virtual-time-budget=15000", f"--window-size={width},{height}",
                             f"--screenshot={png}", url], timeout=180)
        if shot.returncode != 0 or not png.exists():
            print(f"chromium --screenshot failed ({shot.returncode}): {shot.stderr[-2000:]}", file=sys.stderr)
            return 1
        print(f"wrote {png} ({url})")
    finally:
        if args.keep:
            print(f"phoenix left running at {server.base_url} (pid {server.proc.pid})")
        else:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
