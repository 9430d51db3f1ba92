"""Write the docs that must not drift from the code (`make docs`); tests compare each committed
file with the function that renders it:

- ``docs/cli.md``: every command's ``--help`` (`auditor.cli.reference.render_cli_doc`)
- ``docs/trajectory.schema.json``: the canonical JSONL line (`auditor.trajectory.json_schema`)
- ``docs/schema.md``: the DuckDB tables, views and settings (`auditor.store.schema_doc.render_schema_doc`)

    python scripts/gen_docs.py
"""

from __future__ import annotations

import json
from pathlib import Path

from auditor.cli.reference import render_cli_doc
from auditor.store.schema_doc import render_schema_doc
from auditor.trajectory import json_schema

DOCS = Path(__file__).resolve().parents[1] / "docs"


def trajectory_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("cli.md", render_cli_doc()), ("trajectory.schema.json", trajectory_schema_text()),
                       ("schema.md", render_schema_doc())):
        path = DOCS / name
        path.write_text(text, encoding="utf-8")
        written.append(str(path))
    print("wrote " + ", ".join(written))


if __name__ == "__main__":
    main()
