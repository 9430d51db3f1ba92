#!/usr/bin/env python3
"""Start, wait for and stop an Arize Phoenix server, offline, from its own environment
(``.venv-phoenix``, made by ``scripts/phoenix_env.sh``).

Phoenix takes the agent's spans (OTLP/HTTP, protobuf only, at ``/v1/traces``) and auditor's
verdicts (`audit export --otlp URL/v1/traces --phoenix URL`), and shows both in its trace view::

    python scripts/phoenix_server.py start            # waits for /healthz; prints the URL
    python scripts/phoenix_server.py status
    python scripts/phoenix_server.py stop             # TERM, then KILL

Its data lives in a working directory (SQLite; ``--workdir``, default ``out/phoenix``). The
environment keeps it from any request to the public internet (telemetry, web fonts, downloads).
The same `PhoenixServer` is used by tests/interop/test_phoenix.py and scripts/phoenix_screenshot.py.
Only the standard library is needed here.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
PHOENIX_VENV = Path(os.environ.get("PHOENIX_VENV", ROOT / ".venv-phoenix"))
RUN_DIR = Path(os.environ.get("AUDITOR_PHOENIX_RUN_DIR", ROOT / "out" / "phoenix"))


def _vllm_server() -> ModuleType:
    """scripts/vllm_server.py, for its process helpers (free_port, stop_pid, tail)."""
    if "vllm_server" in sys.modules:
        return sys.modules["vllm_server"]
    spec = importlib.util.spec_from_file_location("vllm_server", ROOT / "scripts" / "vllm_server.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["vllm_server"] = module
    spec.loader.exec_module(module)
    return module


class ServerError(RuntimeError):
    """Phoenix could not be started or did not become healthy; the message says why."""


def phoenix_executable() -> Path:
    exe = PHOENIX_VENV / "bin" / "phoenix"
    if not exe.exists():
        raise ServerError(f"{PHOENIX_VENV} is missing: run `make phoenix-env` (scripts/phoenix_env.sh) first")
    return exe


def server_env(port: int, grpc_port: int, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update({
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),  # UI, REST API (/v1), GraphQL and OTLP/HTTP (/v1/traces)
        "PHOENIX_GRPC_PORT": str(grpc_port),  # OTLP/gRPC: binds every interface whatever PHOENIX_HOST says
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",  # no web fonts, telemetry or WASM download
        "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
    })
    return env


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


@dataclass
class PhoenixServer:
    """A Phoenix server; `with PhoenixServer(workdir=...) as px:` starts it and always stops it."""

    workdir: Path = RUN_DIR / "workdir"
    port: int = 0
    grpc_port: int = 0
    log_path: Path = RUN_DIR / "server.log"
    pid_path: Path = RUN_DIR / "server.pid"
    proc: subprocess.Popen | None = None
    ready_after: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_url(self) -> str:
        return f"{self.base_url}/v1/traces"

    def start(self, wait: bool = True, timeout: float = 240.0) -> "PhoenixServer":
        vs = _vllm_server()
        exe = phoenix_executable()
        self.port = self.port or vs.free_port()
        self.grpc_port = self.grpc_port or vs.free_port()
        for p in (self.workdir, self.log_path.parent, self.pid_path.parent):
            p.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "w")
        started = time.monotonic()
        # own process group: stop() signals Phoenix and whatever it forked, nothing else
        self.proc = subprocess.Popen([str(exe), "serve"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=server_env(self.port, self.grpc_port, self.workdir), cwd=str(self.workdir),
                                     start_new_session=True)
        log.close()
        self.pid_path.write_text(json.dumps({"pid": self.proc.pid, "port": self.port, "log": str(self.log_path)}))
        if not wait:
            return self
        deadline = started + timeout
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise ServerError(f"phoenix exited with code {self.proc.returncode} while starting; last log "
                                      f"lines ({self.log_path}):\n{vs.tail(self.log_path)}")
                if _ok(f"{self.base_url}/healthz"):
                    self.ready_after = time.monotonic() - started
                    return self
                time.sleep(0.5)
            raise ServerError(f"phoenix not healthy after {timeout:.0f} s; last log lines ({self.log_path}):\n"
                              f"{vs.tail(self.log_path)}")
        except BaseException:
            self.stop()
            raise

    def stop(self, grace: float = 20.0) -> None:
        pid = self.proc.pid if self.proc is not None else _read_pid(self.pid_path)
        if pid:
            _vllm_server().stop_pid(pid, grace)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - stop_pid killed it
                pass
        self.pid_path.unlink(missing_ok=True)

    def __enter__(self) -> "PhoenixServer":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_pid(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start in the background, wait for /healthz, write the pid file")
    s.add_argument("--port", type=int, default=int(os.environ.get("PHOENIX_PORT", 6006)))
    s.add_argument("--grpc-port", type=int, default=int(os.environ.get("PHOENIX_GRPC_PORT", 4317)))
    s.add_argument("--workdir", type=Path, default=RUN_DIR / "workdir")
    s.add_argument("--timeout", type=float, default=240.0)
    sub.add_parser("stop", help="SIGTERM the server's process group, SIGKILL after a grace period")
    sub.add_parser("status", help="is a server from the pid file up?")
    args = p.parse_args(argv)
    pid_path = RUN_DIR / "server.pid"
    if args.cmd == "start":
        srv = PhoenixServer(workdir=args.workdir, port=args.port, grpc_port=args.grpc_port, pid_path=pid_path)
        try:
            srv.start(timeout=args.timeout)
        except ServerError as exc:
            print(f"phoenix: {exc}", file=sys.stderr)
            return 1
        print(f"phoenix: healthy after {srv.ready_after:.0f} s at {srv.base_url} (OTLP/HTTP {srv.traces_url}, "
              f"pid {srv.proc.pid}, data {srv.workdir}, log {srv.log_path})")
        return 0
    pid = _read_pid(pid_path)
    if args.cmd == "stop":
        if not pid:
            print("phoenix: no pid file; nothing to stop")
            return 0
        _vllm_server().stop_pid(pid)
        pid_path.unlink(missing_ok=True)
        print(f"phoenix: stopped pid {pid}")
        return 0
    port = json.loads(pid_path.read_text()).get("port") if pid else None
    up = bool(port) and _ok(f"http://127.0.0.1:{port}/healthz")
    print(f"phoenix: {'up at http://127.0.0.1:%s' % port if up else 'not running'}")
    return 0 if up else 1


if __name__ == "__main__":
    sys.exit(main())
