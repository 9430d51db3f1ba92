"""Shared by the guard tests: the conversation, a tool, and two guards on one tiny random model (a
strict one that blocks every call, a lenient one with the default policy), and an in-memory span
exporter."""

from __future__ import annotations

import pytest

from auditor.check import policy_from_dict
from auditor.guard import Guard
from auditor.testing import tiny_model, tiny_tokenizer

from helpers.guarding import STRICT
from helpers.tracing import in_memory_tracing


@pytest.fixture(scope="module")
def guards():
    pair = (tiny_model("llama"), tiny_tokenizer())
    return {"strict": Guard(pair, policy=policy_from_dict(STRICT), hops=0), "lenient": Guard(pair, hops=0)}


@pytest.fixture
def spans():
    """(provider, exporter): a real TracerProvider feeding an in-memory exporter."""
    with in_memory_tracing() as pair:
        yield pair
