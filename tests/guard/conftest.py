"""Shared by the guard tests: the conversation, a tool, and two guards on one tiny random model (a
strict one that blocks every call, a lenient one with the default policy), and an in-memory span
exporter."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from auditor.check import policy_from_dict
from auditor.guard import Guard
from auditor.testing import tiny_model, tiny_tokenizer

from helpers.guarding import STRICT


@pytest.fixture(scope="module")
def guards():
    pair = (tiny_model("llama"), tiny_tokenizer())
    return {"strict": Guard(pair, policy=policy_from_dict(STRICT), hops=0), "lenient": Guard(pair, hops=0)}


@pytest.fixture
def spans():
    """(provider, exporter): a real TracerProvider feeding an in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()
