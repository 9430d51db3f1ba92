#!/usr/bin/env python3
"""Start, wait for and stop a vLLM OpenAI-compatible server on this CPU machine.

vLLM runs from its own environment (``.venv-vllm``, made by ``scripts/vllm_env.sh``) so its pins
never touch the core ``.venv``. It serves the embedded SmolLM2 (the safetensors directory that
``auditor.model_registry.provision_embedded()`` converts once into the user cache) and exports its
``llm_request`` spans over OTLP/HTTP to ``audit collect`` (or any OTLP receiver).

Usage (run with the core venv's python; it finds the model and launches vLLM's python)::

    python scripts/vllm_server.py start --otlp http://127.0.0.1:4318/v1/traces   # waits for /health
    python scripts/vllm_server.py status
    python scripts/vllm_server.py stop                                             # TERM, then KILL

The same functions (`start_server`, `wait_healthy`, `stop_server`, `VLLMServer`) are imported by
the end-to-end test. Only the standard library is needed here (``auditor`` only to find the model).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VLLM_VENV = Path(os.environ.get("VLLM_VENV", ROOT / ".venv-vllm"))
RUN_DIR = Path(os.environ.get("AUDITOR_VLLM_RUN_DIR", ROOT / "out" / "vllm"))
SERVED_NAME = "smollm2"
DEFAULT_PORT = 8011
# SmolLM2's own template cannot render tool calls (content None) or tool definitions; this one can.
CHAT_TEMPLATE = ROOT / "examples" / "agents" / "chat_template.jinja"


class ServerError(RuntimeError):
    """The server could not be started or did not become healthy; the message says why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def model_dir(spec: str | None = None) -> Path:
    if spec:
        return Path(spec).expanduser().resolve()
    from auditor.model_registry import provision_embedded  # core venv; converts once, reused afterwards

    return provision_embedded()


def vllm_python() -> Path:
    py = VLLM_VENV / "bin" / "python"
    if not py.exists():
        raise ServerError(f"{VLLM_VENV} is missing: run `make vllm-env` (scripts/vllm_env.sh) first")
    return py


def server_env(otlp_endpoint: str | None, threads: int, kv_cache_gb: int) -> dict[str, str]:
    env = dict(os.environ)
    # Nothing from the core venv may leak into vLLM's interpreter.
    for key in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(key, None)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "VLLM_TARGET_DEVICE": "cpu",
            "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gb),
            "OMP_NUM_THREADS": str(threads),
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    env.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
    if otlp_endpoint:
        env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
        env.setdefault("OTEL_SERVICE_NAME", "vllm")
    return env


def server_command(
    model: Path, port: int, otlp_endpoint: str | None, max_model_len: int, dtype: str, extra: list[str],
    eager: bool = True,
) -> list[str]:
    cmd = [
        str(vllm_python()),
        "-m",
        "vllm.entrypoints.openai.api_server",  # the `vllm` console script fails a metadata lookup
        "--model",
        str(model),
        "--served-model-name",
        SERVED_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        dtype,
        "--max-model-len",
        str(max_model_len),
        "--max-num-seqs",
        "4",
        "--generation-config",
        "vllm",  # the model dir's generation_config has no sampling defaults worth inheriting
        # (no --disable-log-stats: vLLM's tracing reads the per-request stats it turns off and
        # then fails every traced request with an AssertionError in do_tracing)
        # Tool calls: the template writes Hermes-style <tool_call>{...}</tool_call>; the parser
        # reads them back, and named/required tool_choice is decoded under the tools' JSON schema.
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
    ]
    if eager:
        # torch.compile costs 80-150 s per start here and its AOT cache fails to reload
        # ("'function' object has no attribute 'finalize_loading'"); a 135M model does not need it.
        cmd.append("--enforce-eager")
    if CHAT_TEMPLATE.exists():
        cmd += ["--chat-template", str(CHAT_TEMPLATE)]
    if otlp_endpoint:
        cmd += ["--otlp-traces-endpoint", otlp_endpoint]
    return cmd + list(extra)


@dataclass
class VLLMServer:
    """A running (or to-be-run) server; `with VLLMServer(...) as srv:` starts and always stops it."""

    port: int = 0
    otlp_endpoint: str | None = None
    model: str | None = None
    max_model_len: int = 4096
    dtype: str = "bfloat16"
    threads: int = 1
    kv_cache_gb: int = 1
    eager: bool = True
    extra_args: list[str] = field(default_factory=list)
    log_path: Path = RUN_DIR / "server.log"
    pid_path: Path = RUN_DIR / "server.pid"
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    ready_after: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, wait: bool = True, timeout: float = 600.0) -> "VLLMServer":
        if self.pid_path.exists() and _alive(_read_pid(self.pid_path)):
            raise ServerError(
                f"a server is already running (pid {_read_pid(self.pid_path)}, {self.pid_path}); "
                "stop it first: python scripts/vllm_server.py stop"
            )
        self.port = self.port or free_port()
        mdir = model_dir(self.model)
        cmd = server_command(mdir, self.port, self.otlp_endpoint, self.max_model_len, self.dtype, self.extra_args,
                             eager=self.eager)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "w")
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        self.started_at = time.monotonic()
        # Own process group: stop() signals vLLM and every worker it forked, nothing else.
        self.proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=server_env(self.otlp_endpoint, self.threads, self.kv_cache_gb),
            cwd=str(ROOT),
            start_new_session=True,
        )
        log.close()
        self.pid_path.write_text(json.dumps({"pid": self.proc.pid, "port": self.port, "log": str(self.log_path)}))
        if wait:
            try:
                self.wait_healthy(timeout)
            except BaseException:
                self.stop()
                raise
        return self

    def wait_healthy(self, timeout: float = 600.0) -> float:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}/health"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerError(
                    f"vLLM exited with code {self.proc.returncode} while starting; last log lines "
                    f"({self.log_path}):\n{tail(self.log_path)}"
                )
            if _get_ok(url):
                self.ready_after = time.monotonic() - self.started_at
                return self.ready_after
            time.sleep(1.0)
        raise ServerError(f"vLLM not healthy after {timeout:.0f} s; last log lines ({self.log_path}):\n{tail(self.log_path)}")

    def stop(self, grace: float = 20.0) -> None:
        pid = self.proc.pid if self.proc is not None else _read_pid(self.pid_path)
        if pid:
            stop_pid(pid, grace)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - stop_pid already killed it
                pass
        self.pid_path.unlink(missing_ok=True)

    def __enter__(self) -> "VLLMServer":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_pid(pid_path: Path) -> int | None:
    try:
        return int(json.loads(pid_path.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    # A zombie child counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    return True


def stop_pid(pid: int, grace: float = 20.0) -> None:
    """SIGTERM the server's process group (it leads its own session), then SIGKILL what is left."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        pgid = pid  # leader gone; its workers may still be in the group
    if pgid != pid:
        pgid = None  # type: ignore[assignment]  # not a group leader: signal only the pid
    send = (lambda s: os.killpg(pgid, s)) if pgid else (lambda s: os.kill(pid, s))
    try:
        send(signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if not (_group_alive(pgid) if pgid else _alive(pid)):
            return
        time.sleep(0.3)
    try:
        send(signal.SIGKILL)
    except ProcessLookupError:
        pass


def _get_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start in the background, wait for /health, write the pid file")
    s.add_argument("--port", type=int, default=int(os.environ.get("VLLM_PORT", DEFAULT_PORT)))
    s.add_argument("--otlp", default=os.environ.get("VLLM_OTLP_ENDPOINT"), help="OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces")
    s.add_argument("--model", default=None, help="model directory (default: the embedded SmolLM2, converted)")
    s.add_argument("--max-model-len", type=int, default=4096)
    s.add_argument("--dtype", default="bfloat16")
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--kv-cache-gb", type=int, default=1)
    s.add_argument("--compile", action="store_true", help="let vLLM torch.compile the model (slower start)")
    s.add_argument("--timeout", type=float, default=600.0)
    s.add_argument("--log", type=Path, default=RUN_DIR / "server.log")
    s.add_argument("extra", nargs=argparse.REMAINDER, help="after --: more vLLM arguments")
    st = sub.add_parser("stop", help="SIGTERM the server's process group, SIGKILL after a grace period")
    st.add_argument("--grace", type=float, default=20.0)
    sub.add_parser("status", help="print whether a server from the pid file is up and healthy")
    args = p.parse_args(argv)
    pid_path = RUN_DIR / "server.pid"

    if args.cmd == "start":
        extra = [a for a in args.extra if a != "--"]
        srv = VLLMServer(
            port=args.port, otlp_endpoint=args.otlp, model=args.model, max_model_len=args.max_model_len,
            dtype=args.dtype, threads=args.threads, kv_cache_gb=args.kv_cache_gb, extra_args=extra, eager=not args.compile,
            log_path=args.log, pid_path=pid_path,
        )
        try:
            srv.start(wait=True, timeout=args.timeout)
        except ServerError as exc:
            print(f"vllm: {exc}", file=sys.stderr)
            return 1
        print(f"vllm: healthy after {srv.ready_after:.0f} s at {srv.base_url} (model '{SERVED_NAME}', pid {srv.proc.pid}, log {srv.log_path})")
        return 0
    if args.cmd == "stop":
        pid = _read_pid(pid_path)
        if not pid:
            print("vllm: no pid file; nothing to stop")
            return 0
        stop_pid(pid, args.grace)
        pid_path.unlink(missing_ok=True)
        print(f"vllm: stopped pid {pid}")
        return 0
    # status
    pid = _read_pid(pid_path)
    if not pid or not _alive(pid):
        print("vllm: not running")
        return 1
    port = json.loads(pid_path.read_text()).get("port")
    healthy = _get_ok(f"http://127.0.0.1:{port}/health")
    print(f"vllm: pid {pid} port {port} {'healthy' if healthy else 'not healthy yet'}")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
