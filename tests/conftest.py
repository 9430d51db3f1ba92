"""Shared test set-up: offline, deterministic, gentle on a 2-core machine."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES


@pytest.fixture(scope="session")
def embedded_model():
    """The embedded SmolLM2 (provisioned by `make test` before pytest runs), loaded once."""
    from auditor.model_registry import load_model

    return load_model()


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory):
    """The session's one real vLLM server (see `helpers.vllm`); started on first use."""
    from helpers.vllm import start_session_server

    srv = start_session_server(tmp_path_factory.mktemp("vllm"))
    try:
        yield srv
    finally:
        if srv.server is not None:
            srv.server.stop()
