"""docs/schema.md is generated from the live schema and must not drift."""

from __future__ import annotations

from pathlib import Path

from auditor.store.schema_doc import render_schema_doc

SCHEMA_DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


def test_schema_doc_is_up_to_date():
    assert SCHEMA_DOC_PATH.read_text(encoding="utf-8") == render_schema_doc(), (
        "docs/schema.md is stale: run `make docs`")


def test_schema_doc_covers_every_relation(store):
    doc = render_schema_doc()
    for name in store.relations():
        assert f"### `{name}`" in doc
    assert "unsupported_threshold" in doc and "send_email" in doc


def test_the_documented_queries_run(store, example_audits):
    import re

    store.record_audits(example_audits)
    # the synthetic attribution supports the injected recipient at 1/3, above the default 0.25
    store.set_setting("unsupported_threshold", 0.4)
    blocks = re.findall(r"```sql\n(.*?)```", render_schema_doc(), re.S)
    assert len(blocks) >= 3
    for sql in blocks:
        cols, rows = store.query(sql)
        assert rows, sql
