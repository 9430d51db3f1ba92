"""Importing into a real DuckDB file in batches: a record the store refuses costs itself, never its
batch, and is reported with its place; the rest of the batch is stored."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from auditor.cli import app
from auditor.collectors.spans import SpanRecord
from auditor.collectors.streaming import Chunk
from auditor.store import Store
from auditor.store.importer import Importer, import_file, store_robustly
from auditor.testing.audits import synthetic_trajectory


def _mixed() -> Chunk:
    """Ten good trajectories and two the store cannot take, as if a reader had let them through
    (the readers refuse both today: the store must not depend on it): an int beyond INTEGER, an
    action id twice."""
    good = [synthetic_trajectory(k) for k in range(10)]
    big = synthetic_trajectory(10)
    big = big.model_copy(update={"actions": [big.actions[0].model_copy(update={"step": 2**40}), *big.actions[1:]]})
    dup = synthetic_trajectory(11)
    dup = dup.model_copy(update={"actions": [*dup.actions, dup.actions[0]]})
    trajs = [*good[:4], big, *good[4:8], dup, *good[8:]]
    return Chunk(trajectories=trajs, places=[("run.jsonl", k + 1) for k in range(len(trajs))])


def test_a_refused_trajectory_costs_itself_not_its_batch(tmp_path):
    taken = []
    with Store(tmp_path / "a.duckdb") as store:
        imp = Importer(store, on_stored=taken.append)
        imp.add(_mixed())
        imp.flush()
        stored = {r[0] for r in store.query("SELECT trajectory_id FROM trajectories")[1]}
    assert stored == {f"synthetic-{k}" for k in range(10)} == {t.id for t in taken}
    assert imp.stats.trajectories_changed == 10
    bad = imp.stats.issues
    assert [(i.file, i.line) for i in bad] == [("run.jsonl", 5), ("run.jsonl", 10)]
    assert "synthetic-10" in bad[0].message and "too large" in bad[0].message
    assert "synthetic-11" in bad[1].message and "PRIMARY KEY" in bad[1].message  # the cause, not "transaction aborted"
    assert all("transaction is aborted" not in i.message.lower() for i in bad)
    assert imp.stats.batches >= 2  # the good records went in together, a few transactions, not one each


def test_store_robustly_isolates_with_few_transactions():
    calls = []

    def write(batch):
        calls.append(len(batch))
        if 13 in batch:
            raise ValueError("no thirteen")
        return len(batch)

    n, batches, refused = store_robustly(write, list(range(64)))
    assert n == 63 and refused == [(13, "the store refused it: ValueError: no thirteen")]
    assert batches <= 7 and len(calls) <= 13  # log2(64) halvings, not 64 transactions


def test_a_span_the_store_cannot_encode_costs_itself(tmp_path):
    good = [SpanRecord(trace_id="ab" * 16, span_id=f"{i:016x}", name=f"s{i}", kind="INTERNAL",
                       start_time_unix_nano=1, end_time_unix_nano=2, source=f"run.jsonl:{i + 1}") for i in range(6)]
    bad = good[3].model_copy(update={"span_id": "f" * 16, "name": "\ud800 lone surrogate", "source": "run.jsonl:9"})
    with Store(tmp_path / "s.duckdb") as store:
        imp = Importer(store, max_spans=100)
        imp.add(Chunk(spans=[*good[:3], bad, *good[3:]]))
        imp.flush()
        assert store.query("SELECT count(*) FROM spans")[1] == [(6,)]
    (issue,) = imp.stats.issues
    assert (issue.file, issue.line, issue.span_id) == ("run.jsonl", 9, "f" * 16)
    assert imp.stats.spans_added == 6


def test_audit_trace_imports_the_rest_and_exits_3(tmp_path):
    lines = [synthetic_trajectory(k).to_jsonl_line() for k in range(6)]
    big = json.loads(lines[5])
    big["id"] = "too-big"
    big["actions"][0]["step"] = 2**40
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([*lines[:3], json.dumps(big), "{broken", *lines[3:5]]) + "\n")
    db = tmp_path / "cli.duckdb"
    heard = []
    with Store(db) as store:
        stats = import_file(store, path, on_issue=heard.append)
    assert heard == stats.issues and [i.line for i in heard] == [4, 5]  # told as they were found
    result = CliRunner().invoke(app, ["trace", str(path), "--no-attribute", "--db", str(tmp_path / "c2.duckdb"),
                                      "--json"])
    assert result.exit_code == 3, result.output
    out = json.loads(result.stdout)
    assert out["trajectories"] == 5 and out["skipped"] == 2
    assert sorted(i["line"] for i in out["issues"] if i["severity"] == "error") == [4, 5]


def test_the_memory_cap_rises_when_a_batch_needs_it_and_is_restored(tmp_path):
    from auditor.store.importer import MemoryCap

    spans = [SpanRecord(trace_id=f"{k:032x}", span_id=f"{k:016x}", name="s", kind="INTERNAL", start_time_unix_nano=1,
                        end_time_unix_nano=2, attributes={"text": "x" * 2000}) for k in range(3000)]
    with Store(tmp_path / "m.duckdb") as store:
        con = store.connection
        before = con.execute("SELECT current_setting('memory_limit'), current_setting('checkpoint_threshold')").fetchone()
        cap = MemoryCap(con, start_mb=2)  # far too little for 3,000 spans of 2 KB
        assert cap.run(store.add_spans, spans) == 3000
        assert cap.raised >= 1 and 1 < cap.mb <= cap.ceiling_mb
        cap.restore()
        after = con.execute("SELECT current_setting('memory_limit'), current_setting('checkpoint_threshold')").fetchone()
        assert after == before
