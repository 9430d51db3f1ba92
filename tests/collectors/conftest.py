"""Fixtures for the collector tests: real SDK pipelines (in-memory and file exporters), a
tiny OpenAI-compatible server on 127.0.0.1, and the sample files in ``data/``."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.fake_openai import FakeOpenAI
from helpers.tracing import in_memory_tracing

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return HERE / "data"


@pytest.fixture
def memory_spans():
    """(provider, exporter): a real TracerProvider feeding an in-memory exporter."""
    with in_memory_tracing() as pair:
        yield pair


@pytest.fixture
def instrumented(memory_spans):
    """OpenAIInstrumentor active on the in-memory provider; always uninstrumented after."""
    from auditor.collectors.instrument import OpenAIInstrumentor

    provider, exporter = memory_spans
    inst = OpenAIInstrumentor(tracer_provider=provider).instrument()
    yield inst, exporter
    inst.uninstrument()


@pytest.fixture
def fake_server():
    with FakeOpenAI() as srv:
        yield srv
