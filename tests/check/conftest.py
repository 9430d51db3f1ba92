from __future__ import annotations

import pytest

from helpers.check import example


@pytest.fixture
def injected():
    return example("injected_email")


@pytest.fixture
def benign():
    return example("benign_budget_email")
