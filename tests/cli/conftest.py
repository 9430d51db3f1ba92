"""CLI fixtures: a model-free replay engine behind `audit trace`, and a database path."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from auditor.testing.audits import synthetic_audit, synthetic_run


class FakeAuditor:
    """Stands in for `auditor.audit.Auditor` (same constructor keywords and `.audit`)."""

    instances: list["FakeAuditor"] = []

    def __init__(self, **kw):
        self.kw = kw
        self.audited: list[str] = []
        FakeAuditor.instances.append(self)

    def audit(self, traj, progress=None):
        self.audited.append(traj.id)
        if traj.metadata.get("explode"):
            raise RuntimeError("replay failed")
        return synthetic_audit(traj, synthetic_run("fake-run", model="fake", method=self.kw["method"],
                                                   hops=self.kw["hops"]))


@pytest.fixture
def fake_auditor(monkeypatch):
    FakeAuditor.instances.clear()
    monkeypatch.setattr("auditor.audit.runs.make_auditor", lambda **kw: FakeAuditor(**kw))  # the one seam
    return FakeAuditor


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def db(tmp_path):
    return tmp_path / "audit.duckdb"
