"""Fixtures of the report's tests (helpers live in tests/helpers/report.py: conftest modules are not importable by name)."""

from __future__ import annotations

import os

import pytest

from auditor.report.browser import find_chromium
from helpers.report import example, synthetic_audit


@pytest.fixture(scope="session")
def injected_audit():
    return synthetic_audit(example("injected_email"))


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        message = "Chromium is not installed (apt-get install -y chromium, or $CHROMIUM; `make test` does it)"
        if os.environ.get("AUDITOR_REQUIRE_BROWSER"):
            pytest.fail(message + " and AUDITOR_REQUIRE_BROWSER is set")
        pytest.skip(message)
    return path
