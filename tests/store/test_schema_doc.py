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
    assert "action_verdicts" in doc and "send_email" in doc


def test_the_documented_queries_run(store, example_audits):
    import re

    from auditor.check import check_audit, default_policy

    # the synthetic attribution supports the injected recipient at 1/3, above the default 0.27
    policy = default_policy().with_overrides(decide="support", threshold=0.4)
    store.record_audits(example_audits, [check_audit(a, policy).verdicts for a in example_audits], policy=policy)
    blocks = re.findall(r"```sql\n(.*?)```", render_schema_doc(), re.S)
    assert len(blocks) >= 3
    for sql in blocks:
        cols, rows = store.query(sql)
        assert rows, sql
