"""`audit check` as a real process: progress on stderr (never in the --json on stdout, no
transformers bar), and results kept as each trajectory finishes, so a killed check loses only the
trajectory it was auditing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.check import ROOT

TESTS = Path(__file__).resolve().parents[1]
INJECTED = ROOT / "examples" / "injected_email.jsonl"
BENIGN = ROOT / "examples" / "benign_budget_email.jsonl"
AUDIT = [sys.executable, "-c", "from auditor.cli import main; main()"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A tiny random llama saved as a local HF directory: `--model DIR` loads it for real."""
    from auditor.testing import tiny_model, tiny_tokenizer

    path = tmp_path_factory.mktemp("tiny-llama")
    tiny_model("llama").save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path


def test_json_stays_clean_and_progress_goes_to_stderr(tiny_dir, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("GITHUB_ACTIONS", None)
    out = subprocess.run([*AUDIT, "check", str(INJECTED), str(BENIGN), "--json", "--model", str(tiny_dir),
                          "--threads", "1"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert out.returncode in (0, 1), out.stderr
    report = json.loads(out.stdout)  # stdout is the JSON and nothing else
    assert [r["trajectory_id"] for r in report["results"]] == ["injected-inbox-forward", "benign-budget-email"]
    err = out.stderr
    assert "checking 2 trajectories" in err
    assert "[1/2] auditing injected-inbox-forward" in err and "[2/2] auditing benign-budget-email" in err
    assert "injected-inbox-forward: " in err and " passed, " in err
    assert "Loading weights" not in err and "it/s]" not in err  # transformers' bar is silenced
    quiet = subprocess.run([*AUDIT, "check", str(BENIGN), "--json", "--quiet", "--model", str(tiny_dir)],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert json.loads(quiet.stdout)["results"] and quiet.stderr == ""


SLOW_SECOND = """
import sys, time
sys.path.insert(0, sys.argv.pop(1))
from helpers.check import FakeAuditor
import auditor.audit.runs as runs

class SecondNeverEnds(FakeAuditor):
    def audit(self, traj, progress=None):
        if self.seen:
            time.sleep(3600)
        return super().audit(traj, progress)

shares = {"send_email": {"m1": 0.1, "m3": 0.9}, "read_inbox": {"m1": 0.9, "m3": 0.1}}
runs.make_auditor = lambda **kw: SecondNeverEnds(shares)  # the one seam
from auditor.cli import main
main()
"""


def test_a_killed_check_keeps_the_trajectories_it_finished(tmp_path):
    from auditor.store import Store

    db, report, junit = tmp_path / "audit.duckdb", tmp_path / "report.json", tmp_path / "junit.xml"
    policy = tmp_path / "support.toml"
    policy.write_text('decide = "support"\n')  # the support rule: the stand-in's shares decide exactly
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SECOND, str(TESTS), "check", str(INJECTED), str(BENIGN),
                             "--db", str(db), "--output", str(report), "--junit", str(junit), "--json",
                             "--policy", str(policy)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if report.exists() and json.loads(report.read_text())["results"]:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read()  # still auditing the second trajectory
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stdout.read() == ""  # --json on stdout comes only at the end: it never came
    kept = json.loads(report.read_text())
    assert [r["trajectory_id"] for r in kept["results"]] == ["injected-inbox-forward"]
    (finding,) = kept["results"][0]["findings"]
    assert finding["tool_name"] == "send_email"
    assert "injected-inbox-forward" in junit.read_text()
    with Store(db, read_only=True) as store:
        assert store.query("SELECT trajectory_id FROM audits")[1] == [("injected-inbox-forward",)]
        assert store.query("SELECT count(*) FROM unsupported_actions")[1] == [(1,)]
