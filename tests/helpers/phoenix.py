"""A real Arize Phoenix for tests: started from ``.venv-phoenix`` (scripts/phoenix_env.sh) by
scripts/phoenix_server.py, read back through Phoenix's own REST API (arize-phoenix 20.26.1).

Skipped (with the reason) only when ``.venv-phoenix`` is absent and ``AUDITOR_E2E`` is unset;
``make test`` creates it and sets ``AUDITOR_E2E=1``, so there a Phoenix that cannot start fails.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

from helpers.vllm import E2E, ROOT, load_script

PHOENIX_VENV = Path(os.environ.get("PHOENIX_VENV", ROOT / ".venv-phoenix"))

skip_without_phoenix = pytest.mark.skipif(
    not E2E and not (PHOENIX_VENV / "bin" / "phoenix").exists(),
    reason=f"needs Phoenix's own environment {PHOENIX_VENV} (run `make phoenix-env`; `make test` creates it and "
           "sets AUDITOR_E2E=1)",
)


def phoenix_server_module() -> Any:
    if E2E and not (PHOENIX_VENV / "bin" / "phoenix").exists():
        pytest.fail(f"AUDITOR_E2E is set but {PHOENIX_VENV} is missing: run `make phoenix-env`")
    return load_script("phoenix_server", ROOT / "scripts" / "phoenix_server.py")


def get(base_url: str, path: str, **params: Any) -> Any:
    query = urllib.parse.urlencode(params, doseq=True)
    with urllib.request.urlopen(f"{base_url}{path}{'?' + query if query else ''}", timeout=30) as r:
        return json.loads(r.read())


def spans(base_url: str, project: str) -> list[dict[str, Any]]:
    """Every span of a project (``GET /v1/projects/{project}/spans``, all pages)."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = get(base_url, f"/v1/projects/{project}/spans", limit=100, **({"cursor": cursor} if cursor else {}))
        out.extend(page["data"])
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def span_annotations(base_url: str, project: str, span_ids: list[str]) -> list[dict[str, Any]]:
    return get(base_url, f"/v1/projects/{project}/span_annotations", span_ids=span_ids, limit=100)["data"]


def wait_for(what: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Phoenix ingests asynchronously: poll until ``what()`` is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)
