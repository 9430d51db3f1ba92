"""Fixtures of the report's tests (helpers live in tests/helpers/report.py: conftest modules are not importable by name)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from helpers.report import example, synthetic_audit


@pytest.fixture(scope="session")
def injected_audit():
    return synthetic_audit(example("injected_email"))


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        message = "Chromium is not installed (apt-get install -y chromium; `make test` does it)"
        if os.environ.get("AUDITOR_REQUIRE_BROWSER"):
            pytest.fail(message + " and AUDITOR_REQUIRE_BROWSER is set")
        pytest.skip(message)
    return path
