from __future__ import annotations

from pathlib import Path

from auditor.cli.reference import command_names, render_cli_doc

CLI_DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_cli_reference_is_current():
    assert CLI_DOC.exists(), "docs/cli.md is missing: run `make docs`"
    assert CLI_DOC.read_text(encoding="utf-8") == render_cli_doc(), "docs/cli.md is stale: run `make docs`"


def test_cli_reference_covers_every_command():
    text = render_cli_doc()
    names = command_names()
    assert "report" in names and "trace" in names
    for name in names:
        assert f"## audit {name}" in text
