"""One real vLLM server per test session, shared by every test that needs one (`tests/e2e`, the
vLLM tier, which pytest-xdist runs whole on one worker: tests/conftest.py): started on first use
by the session fixture ``vllm_server`` (tests/conftest.py), stopped when the session ends.

It exports its ``llm_request`` spans to ``otlp_url`` (OTLP/HTTP on a port chosen at start), where
nothing listens between tests: a test that wants the server's spans listens there itself
(``audit collect --port``, or an in-process `OTLPReceiver`), waits until its own requests' spans
have arrived, and stops listening. vLLM's exporter drops what it cannot deliver meanwhile.

``AUDITOR_VLLM_BASE_URL`` (with ``AUDITOR_VLLM_OTLP_PORT``, the port it exports spans to) makes
the session use a server already running instead (e.g. ``make vllm-up VLLM_OTLP=...``); it is
left running.

Tests using it carry the ``vllm`` marker and are skipped (with the reason) only when
``.venv-vllm`` is absent and ``AUDITOR_E2E`` is unset; ``make test`` creates the environment and
sets ``AUDITOR_E2E=1``, so there a server that cannot start is a failure.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VLLM_VENV = Path(os.environ.get("VLLM_VENV", ROOT / ".venv-vllm"))
E2E = os.environ.get("AUDITOR_E2E", "").strip() not in ("", "0")

# for `pytestmark`: the reason a vLLM test does not run here
skip_without_vllm = pytest.mark.skipif(
    not E2E and not (VLLM_VENV / "bin" / "python").exists(),
    reason=f"needs vLLM's own environment {VLLM_VENV} (run `make test-e2e`, which creates it and sets AUDITOR_E2E=1)",
)


def load_script(name: str, path: Path) -> ModuleType:
    """Import a script by its file (``scripts/`` is not a package on ``sys.path``)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@dataclass
class SessionServer:
    base_url: str
    otlp_port: int
    server: Any  # None: not ours to stop
    log_path: Path | None

    @property
    def otlp_url(self) -> str:
        return f"http://127.0.0.1:{self.otlp_port}/v1/traces"


def start_session_server(run_dir: Path, timeout: float = 900) -> SessionServer:
    url = os.environ.get("AUDITOR_VLLM_BASE_URL", "").strip()
    if url:
        port = os.environ.get("AUDITOR_VLLM_OTLP_PORT", "").strip()
        if not port.isdigit():
            pytest.fail("AUDITOR_VLLM_BASE_URL is set: AUDITOR_VLLM_OTLP_PORT must name the port the server exports to")
        return SessionServer(url.rstrip("/"), int(port), None, None)
    if E2E and not (VLLM_VENV / "bin" / "python").exists():
        pytest.fail(f"AUDITOR_E2E is set but {VLLM_VENV} is missing: run `make vllm-env` (scripts/vllm_env.sh)")
    vllm_server = load_script("vllm_server", ROOT / "scripts" / "vllm_server.py")
    port = vllm_server.free_port()
    run_dir.mkdir(parents=True, exist_ok=True)
    server = vllm_server.VLLMServer(otlp_endpoint=f"http://127.0.0.1:{port}/v1/traces", log_path=run_dir / "vllm.log",
                                    pid_path=run_dir / "vllm.pid")
    server.start(wait=True, timeout=timeout)
    print(f"vLLM healthy after {server.ready_after:.0f} s at {server.base_url} (log {server.log_path})")
    return SessionServer(server.base_url, port, server, server.log_path)
