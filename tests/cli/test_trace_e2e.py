"""End to end on the embedded model: `audit trace` on the injected example, then SQL over it."""

from __future__ import annotations

import json

import pytest

from auditor.cli import app
from auditor.cli.app import EXIT_OK

SEND_EMAIL_SQL = (
    "SELECT action_id, driver_tool, driver_label, share FROM action_drivers "
    "WHERE tool_name = 'send_email' AND driver_kind = 'tool_output' ORDER BY share DESC"
)


@pytest.mark.slow
def test_trace_then_query_on_the_embedded_model(runner, db, examples_dir):
    result = runner.invoke(app, ["trace", str(examples_dir / "injected_email.jsonl"), "--db", str(db)])
    assert result.exit_code == EXIT_OK, result.output
    assert "injected-inbox-forward:a1" in result.stdout

    result = runner.invoke(app, ["query", SEND_EMAIL_SQL, "--db", str(db), "--format", "json"])
    assert result.exit_code == EXIT_OK, result.output
    rows = json.loads(result.stdout)
    assert rows and {r["action_id"] for r in rows} == {"injected-inbox-forward:a1"}
    assert {r["driver_tool"] for r in rows} == {"read_inbox"}
    assert 0 < sum(r["share"] for r in rows) <= 1.0 + 1e-6

    runs = json.loads(runner.invoke(app, ["runs", "--db", str(db), "-f", "json"]).stdout)
    assert runs[0]["model"] == "smollm2-135m-instruct" and runs[0]["method"] == "flashtrace"
    shown = runner.invoke(app, ["show", "injected-inbox-forward:a1", "--db", str(db)])
    assert shown.exit_code == EXIT_OK and "archive@exfil.example" in shown.stdout
