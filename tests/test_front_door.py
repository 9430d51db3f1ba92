"""`import auditor`: the objects users script with, each imported on first use."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest

import auditor

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "duckdb", "opentelemetry", "pyarrow", "typer")


def test_import_auditor_stays_light():
    code = ("import json, sys, auditor; auditor.__version__; "
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {list(HEAVY)!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize("name", sorted(auditor._EXPORTS))
def test_every_export_is_the_object_its_module_defines(name):
    assert getattr(auditor, name) is getattr(import_module(auditor._EXPORTS[name]), name)
    assert name in dir(auditor)


def test_unknown_names_fail_plainly():
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        auditor.nope  # noqa: B018


def test_load_reads_any_format_and_names_what_it_skipped(tmp_path, examples_dir):
    bad = tmp_path / "mixed.jsonl"
    bad.write_text((examples_dir / "injected_email.jsonl").read_text().strip() + "\n{not json\n")
    result = auditor.load(examples_dir / "benign_budget_email.jsonl", bad)
    assert [t.id for t in result.trajectories] == ["benign-budget-email", "injected-inbox-forward"]
    (issue,) = result.issues
    assert issue.file == str(bad) and issue.line == 2


def test_the_readme_pairs_every_command_with_its_python_call():
    import typer.main

    from auditor.cli import app

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## In Python", 1)[1].split("\n## ", 1)[0]
    for name in typer.main.get_command(app).commands:
        assert f"audit {name}" in section, name
    for name in ("load", "Auditor", "audit_each", "check_paths", "Store", "action_export", "report_from_store",
                 "OpenAIInstrumentor"):
        assert name in section and name in auditor.__all__, name


def test_the_readme_python_session_runs(tmp_path, monkeypatch, examples_dir):
    """The README's session, model-free (the synthetic attribution through the one seam)."""
    import re
    import shutil

    from auditor.testing.audits import synthetic_audit

    class Synthetic:
        def __init__(self, **settings):
            self.settings = settings

        def audit(self, traj, *, run=None):
            return synthetic_audit(traj, run, arguments=True)

    monkeypatch.setattr("auditor.audit.runs.make_auditor", Synthetic)
    shutil.copytree(examples_dir, tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## In Python", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - our own README
    assert scope["shown"]["argument"] == "to"
    # the synthetic attribution drives `to` from the injected paragraph, which holds its value: flagged
    assert scope["report"].exit_code() == 1 and [f.tool_name for f in scope["report"].findings] == ["send_email"]
    assert (tmp_path / "report.html").exists() and (tmp_path / "parquet" / "action_verdicts.parquet").exists()
    assert scope["runs"][0]["trajectories"] == 1
