from __future__ import annotations

from auditor import docs_gen


def test_cli_reference_is_current():
    assert docs_gen.CLI_DOC.exists(), "docs/cli.md is missing: run `make docs`"
    assert docs_gen.CLI_DOC.read_text() == docs_gen.render_cli_doc(), "docs/cli.md is stale: run `make docs`"


def test_cli_reference_covers_every_command():
    text = docs_gen.render_cli_doc()
    for name in docs_gen.command_names():
        assert f"## audit {name}" in text
