"""`audit report`: a file (replayed by a stand-in auditor), a stored run, and the errors."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.report.browser import page_url
from helpers.report import example, synthetic_audit

runner = CliRunner()


class FakeAuditor:
    def __init__(self, **kw):
        self.kw = kw

    def audit(self, traj, progress=None, *, run=None):
        return synthetic_audit(traj, run_id="run-fake")


def _data(path):
    page = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))


def test_help_has_an_example():
    result = runner.invoke(app, ["report", "--help"])
    assert result.exit_code == 0
    assert "Example: audit report" in result.output and "RUN_OR_FILE" in result.output


def test_report_from_a_file_replays_it_first(tmp_path, monkeypatch, examples_dir):
    seen = {}

    def make(**kw):
        seen.update(kw)
        return FakeAuditor(**kw)

    monkeypatch.setattr("auditor.audit.runs.make_auditor", make)
    out = tmp_path / "out" / "r.html"
    result = runner.invoke(app, ["report", str(examples_dir / "injected_email.jsonl"), "-o", str(out),
                                 "--method", "flashtrace", "--hops", "2"])
    assert result.exit_code == 0, result.output
    from auditor.check import audit_settings, default_policy

    # plus causal deltas when the shipped verdict reads them
    assert seen == {"model": None, "method": "flashtrace", "hops": 2, **audit_settings(default_policy())}
    data = _data(out)
    (run,) = data["runs"]
    # one run id for the whole report, derived from the trajectories and the settings
    from auditor.audit import run_id_for
    from auditor.collectors.loading import load_paths

    assert run["run"]["run_id"] == run_id_for(load_paths([examples_dir / "injected_email.jsonl"]).trajectories, seen)
    statuses = [a["verdict"]["status"] for a in run["actions"]]
    # the read has nothing but the request before it (p = 0); the send is judged by the verdict's
    # probability (its status follows the calibrated weights); the final answer is ignored
    assert statuses[0] == "supported" and statuses[2] == "ignored" and statuses[1] in ("supported", "unsupported")
    assert run["actions"][0]["verdict"]["probability"] == 0.0 and 0 < run["actions"][1]["verdict"]["probability"] < 1
    assert "wrote" in result.output and "3 actions" in result.output


def test_report_without_the_check(tmp_path, monkeypatch, examples_dir):
    monkeypatch.setattr("auditor.audit.runs.make_auditor", FakeAuditor)
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(examples_dir / "injected_email.jsonl"), "-o", str(out), "--no-check"])
    assert result.exit_code == 0, result.output
    assert all(a["verdict"] is None for a in _data(out)["runs"][0]["actions"])


def test_report_from_the_store_by_run_and_action_id(tmp_path, injected_audit):
    from auditor.store import Store

    db = tmp_path / "a.duckdb"
    with Store(db) as store:
        store.record_audit(injected_audit)
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", injected_audit.run.run_id, "-o", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert _data(out)["runs"][0]["trajectory"]["id"] == injected_audit.trajectory.id
    send = injected_audit.actions[1].action.id
    result = runner.invoke(app, ["report", send, "-o", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "#action=" in result.output


def test_unknown_reference_and_missing_database_exit_2(tmp_path, injected_audit):
    from auditor.store import Store

    result = runner.invoke(app, ["report", "no-such-thing", "-o", str(tmp_path / "r.html"),
                                 "--db", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 2
    db = tmp_path / "a.duckdb"
    with Store(db) as store:
        store.record_audit(injected_audit)
    result = runner.invoke(app, ["report", "no-such-thing", "-o", str(tmp_path / "r.html"), "--db", str(db)])
    assert result.exit_code == 2
    assert not (tmp_path / "r.html").exists()


def test_unreadable_file_exits_2_and_skipped_records_exit_3(tmp_path, monkeypatch, examples_dir):
    monkeypatch.setattr("auditor.audit.runs.make_auditor", FakeAuditor)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    result = runner.invoke(app, ["report", str(bad), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text((examples_dir / "injected_email.jsonl").read_text().strip() + "\n{not json\n")
    result = runner.invoke(app, ["report", str(mixed), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 3, result.output
    assert (tmp_path / "r.html").exists()


def test_unknown_action_exits_2_and_names_the_actions(tmp_path, monkeypatch, examples_dir):
    monkeypatch.setattr("auditor.audit.runs.make_auditor", FakeAuditor)
    result = runner.invoke(app, ["report", str(examples_dir / "injected_email.jsonl"), "-o", str(tmp_path / "r.html"),
                                 "--action", "no-such-action"])
    assert result.exit_code == 2, result.output
    assert "--action no-such-action: no such action" in result.output
    assert example("injected_email").actions[1].id in result.output


def test_action_selects_the_page_in_the_printed_url(tmp_path, monkeypatch, examples_dir):
    monkeypatch.setattr("auditor.audit.runs.make_auditor", FakeAuditor)
    send = example("injected_email").actions[1].id
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(examples_dir / "injected_email.jsonl"), "-o", str(out),
                                 "--action", send])
    assert result.exit_code == 0, result.output
    assert page_url(out, send) in result.output.replace("\n", "")


def test_png_without_chromium_exits_2_before_replaying(tmp_path, monkeypatch, examples_dir):
    made = []
    monkeypatch.setattr("auditor.audit.runs.make_auditor", lambda **kw: made.append(kw) or FakeAuditor(**kw))
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "no-chromium"))
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(examples_dir / "injected_email.jsonl"), "-o", str(out),
                                 "--png", str(tmp_path / "shot.png")])
    assert result.exit_code == 2, result.output
    assert "apt-get install chromium" in result.output and "no-chromium" in result.output
    assert made == [] and not out.exists() and not (tmp_path / "shot.png").exists()


@pytest.mark.browser
def test_png_of_the_report_with_the_action_selected(chromium, tmp_path, monkeypatch, examples_dir):
    monkeypatch.setattr("auditor.audit.runs.make_auditor", FakeAuditor)
    actions = [a.id for a in example("injected_email").actions]
    shots = []
    for aid in actions[:2]:
        png = tmp_path / f"{len(shots)}.png"
        result = runner.invoke(app, ["report", str(examples_dir / "injected_email.jsonl"), "-o", str(tmp_path / "r.html"),
                                     "--png", str(png), "--action", aid])
        assert result.exit_code == 0, result.output
        assert f"wrote {png}" in result.output.replace("\n", "")
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        shots.append(data)
    assert shots[0] != shots[1]  # a different action selected is a different page
