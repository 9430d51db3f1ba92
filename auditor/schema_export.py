"""Writes the JSON Schema of the canonical trajectory JSONL to docs/ (checked by a test)."""

from __future__ import annotations

import json
from pathlib import Path

from auditor.trajectory import json_schema

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "trajectory.schema.json"


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def write(path: Path = SCHEMA_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render())
    return path


if __name__ == "__main__":
    print(write())
