"""Fixtures for the store tests: the example trajectories and model-free audits of them."""

from __future__ import annotations

import pytest

from auditor.collectors.loading import load_paths
from auditor.store import Store
from auditor.testing.audits import synthetic_audit, synthetic_run

EXAMPLE_NAMES = ("injected_email.jsonl", "benign_budget_email.jsonl", "aider_session.jsonl")


@pytest.fixture(scope="session")
def example_trajs(examples_dir):
    result = load_paths([examples_dir / n for n in EXAMPLE_NAMES])
    assert not result.issues
    return result.trajectories


@pytest.fixture(scope="session")
def example_audits(example_trajs):
    return [synthetic_audit(t, synthetic_run("run-a"), arguments=True) for t in example_trajs]


@pytest.fixture
def store():
    with Store(":memory:") as s:
        yield s


def make_span(trace: int, span: int, parent: int | None = None, **kw):
    """A span as a dict (the store duck-types SpanRecord via model_dump, or takes mappings)."""
    d = {
        "trace_id": f"{trace:032x}", "span_id": f"{span:016x}",
        "parent_span_id": None if parent is None else f"{parent:016x}",
        "name": kw.pop("name", f"span {span}"), "kind": "CLIENT",
        "start_time_unix_nano": 1_700_000_000_000_000_000 + span * 1_000_000,
        "end_time_unix_nano": 1_700_000_000_000_000_000 + span * 1_000_000 + 500_000,
        "attributes": {"gen_ai.operation.name": "chat", "n": span}, "events": [], "links": [],
        "status": {"code": "OK"}, "resource": {"service.name": "agent"}, "scope": "test", "source": "test",
    }
    d.update(kw)
    return d


@pytest.fixture
def span():
    return make_span
