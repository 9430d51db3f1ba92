"""One action, one judged support: `audit trace --json`, `audit show --json`, the report's data
and `audit check --json` all carry `audit check`'s judged support (of the decisive argument the
verdict rests on, else of the whole call), and the store's `unsupported_actions` view too.

The synthetic attribution reproduces the disagreement this fixes: the injected send is supported
at 0.21 as a whole call and at 1/3 by its recipient (`to`), which is what the check judges by.
"""

from __future__ import annotations

import json
import re

import pytest

from auditor.cli import app
from auditor.cli.app import EXIT_FINDINGS, EXIT_OK
from auditor.testing.audits import synthetic_audit

SEND = "injected-inbox-forward:a1"


class SyntheticAuditor:
    """Model-free: the synthetic attribution, arguments explained (put in through the one seam)."""

    def __init__(self, **settings):
        self.settings = settings

    def audit(self, traj, *, run=None):
        return synthetic_audit(traj, run, arguments=True)


def _report_data(path):
    page = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))


def _surfaces(runner, tmp_path, example, policy_args):
    """The send's numbers as each surface prints them: (support, argument, action_support, status),
    and its verdict probability per surface (``got["probability"]``)."""
    db = tmp_path / "a.duckdb"
    trace = runner.invoke(app, ["trace", str(example), "--db", str(db), "--json", *policy_args])
    assert trace.exit_code == EXIT_OK, trace.output
    (audit,) = json.loads(trace.stdout)["audits"]
    t = next(a for a in audit["actions"] if a["action_id"] == SEND)

    show = runner.invoke(app, ["show", SEND, "--db", str(db), "--json"])
    assert show.exit_code == EXIT_OK, show.output
    s = json.loads(show.stdout)

    out = tmp_path / "r.html"
    # no --policy: a stored action is judged by the policy recorded with it, as `audit show` judges it
    report = runner.invoke(app, ["report", SEND, "--db", str(db), "-o", str(out)])
    assert report.exit_code == EXIT_OK, report.output
    (entry,) = [a for run in _report_data(out)["runs"] for a in run["actions"] if a["id"] == SEND]

    check = runner.invoke(app, ["check", str(example), "--json", *policy_args])
    assert check.exit_code in (EXIT_OK, EXIT_FINDINGS), check.output
    (c,) = [v for r in json.loads(check.stdout)["results"] for v in r["verdicts"] if v["action_id"] == SEND]

    query = runner.invoke(app, ["query", "SELECT support, argument, action_support, probability FROM action_verdicts "
                                f"WHERE action_id = '{SEND}'", "--db", str(db), "-f", "json"])
    assert query.exit_code == EXIT_OK, query.output
    (view,) = json.loads(query.stdout)
    probability = {"trace": t["probability"], "show": s["probability"], "report export": entry["export"]["probability"],
                   "report verdict": entry["verdict"]["probability"], "check": c["probability"],
                   "store": view["probability"]}
    return probability, {
        "trace": (t["support"], t["argument"], t["action_support"], t["status"]),
        "show": (s["support"], s["argument"], s["action_support"], s["status"]),
        "report export": (entry["export"]["support"], entry["export"]["argument"], entry["export"]["action_support"],
                          entry["export"]["status"]),
        "report verdict": (entry["verdict"]["support"], entry["verdict"]["argument"],
                           entry["verdict"]["action_support"], entry["verdict"]["check_status"]),
        "check": (c["support"], c["argument"], c["action_support"], c["status"]),
        "store": (view["support"], view["argument"], view["action_support"], None),
    }


def _assert_one_probability(probability):
    """Every surface carries the check's probability (trace rounds it to 4 digits), or none does."""
    p = probability["check"]
    for surface, x in probability.items():
        assert x == (None if p is None else pytest.approx(p, abs=5e-5)), surface
    return p


def _assert_one_number(got, argument):
    # trace rounds to 4 digits for its summary; the others carry the float as computed
    support, call = got["check"][0], got["check"][2]
    for surface, (s, arg, whole, status) in got.items():
        assert s == pytest.approx(support, abs=5e-5), surface
        assert arg == argument, surface
        assert whole == pytest.approx(call, abs=5e-5), surface
        assert status in (None, got["check"][3]), surface
    return support, call


@pytest.mark.parametrize("judge, argument", [("arguments", "to"), ("action", None)])
def test_every_surface_carries_the_same_judged_support(runner, tmp_path, examples_dir, monkeypatch, judge, argument):
    monkeypatch.setattr("auditor.audit.runs.make_auditor", SyntheticAuditor)
    policy = tmp_path / "policy.toml"
    policy.write_text(f'decide = "support"\njudge = "{judge}"\n')  # the support rule: the shares decide exactly
    probability, got = _surfaces(runner, tmp_path, examples_dir / "injected_email.jsonl", ["--policy", str(policy)])
    assert _assert_one_probability(probability) is None  # no verdict under the support rule
    support, call = _assert_one_number(got, argument)
    assert call == pytest.approx(0.2069, abs=1e-4)  # the whole call's support, the same everywhere
    assert support == pytest.approx(1 / 3 if judge == "arguments" else call)
    assert got["check"][3] == ("passed" if judge == "arguments" else "failed")


def test_every_surface_carries_the_same_verdict_probability(runner, tmp_path, examples_dir, monkeypatch):
    """Under the shipped policy (the calibrated verdict) the judged number is the probability; the
    synthetic audit has no causal deltas, so the attribution sub-model judges, on every surface."""
    monkeypatch.setattr("auditor.audit.runs.make_auditor", SyntheticAuditor)
    probability, got = _surfaces(runner, tmp_path, examples_dir / "injected_email.jsonl", [])
    p = _assert_one_probability(probability)
    assert p is not None and 0.0 < p < 1.0
    _assert_one_number(got, "to")


@pytest.mark.slow
def test_every_surface_carries_the_same_judged_support_on_the_embedded_model(runner, tmp_path, examples_dir):
    probability, got = _surfaces(runner, tmp_path, examples_dir / "injected_email.jsonl", [])
    p = _assert_one_probability(probability)
    _assert_one_number(got, "to")
    assert p is not None and got["check"][3] == "failed"  # the recipient came from the inbox
