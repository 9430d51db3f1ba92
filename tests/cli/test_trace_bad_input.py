"""`audit trace FILE` on bad input, with the real store: no traceback, every valid record stored,
each bad one reported with its place, exit 3 (0 with --allow-skipped)."""

from __future__ import annotations

import json

from auditor.cli import app
from auditor.cli.app import EXIT_OK, EXIT_SKIPPED
from auditor.collectors.otlp_json import to_otlp_json
from auditor.collectors.spans import SpanRecord


def _traj(tid: str, **kw) -> str:
    d = {"id": tid, "messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]}
    d.update(kw)
    return json.dumps(d)


BAD_LINES = [
    '{"id": "deep", "messages": [{"role": "user", "content": "x"}], "metadata": ' + '{"a":' * 2000 + "0" + "}" * 2000 + "}",
    '{"id": "deep300", "messages": [{"role": "user", "content": "x"}], "metadata": ' + '{"a":' * 300 + "0" + "}" * 300 + "}",
    _traj("step", actions=[{"id": "a", "kind": "final_answer", "message_index": 1, "step": 2**40}]),
    _traj("ver", schema_version=2**63),
    _traj("dupact", actions=[{"id": "a", "kind": "final_answer", "message_index": 1, "step": 0},
                             {"id": "a", "kind": "final_answer", "message_index": 1, "step": 1}]),
    _traj("ok1", metadata={"changed": True}),  # the id of line 1 with other content
    "{truncated",
]


def test_bad_trajectory_lines(runner, db, tmp_path):
    path = tmp_path / "mixed.jsonl"
    good = [_traj("ok1"), '{"id": "sur", "messages": [{"role": "user", "content": "a\\ud800"}]}', _traj("ok2")]
    path.write_bytes("\n".join([good[0], *BAD_LINES, good[1], good[2], good[0]]).encode() + b"\n\xff\n")
    result = runner.invoke(app, ["trace", str(path), "--no-attribute", "--db", str(db), "--json"])
    assert result.exit_code == EXIT_SKIPPED, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    out = json.loads(result.stdout)
    assert out["trajectories"] == 3 and out["skipped"] == len(BAD_LINES) + 1  # the \xff line is invalid JSON too
    lines = {i["line"] for i in out["issues"] if i["severity"] == "error"}
    assert lines == set(range(2, 2 + len(BAD_LINES))) | {len(BAD_LINES) + 5}
    assert {i["severity"] for i in out["issues"] if i["line"] == len(BAD_LINES) + 4} == {"info"}  # ok1 again
    q = runner.invoke(app, ["query", "SELECT trajectory_id FROM trajectories ORDER BY 1", "--db", str(db), "-f", "json"])
    assert [r["trajectory_id"] for r in json.loads(q.stdout)] == ["ok1", "ok2", "sur"]
    again = runner.invoke(app, ["trace", str(path), "--no-attribute", "--db", str(db), "--allow-skipped"])
    assert again.exit_code == EXIT_OK and "Traceback" not in again.output


def test_bad_spans(runner, db, tmp_path):
    spans = [SpanRecord(trace_id="ab" * 16, span_id=f"{i + 1:016x}", name=f"s{i}", start_time_unix_nano=1000 + i,
                        end_time_unix_nano=2000 + i) for i in range(4)]
    doc = to_otlp_json(spans)
    items = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    items[0]["attributes"] = 1.5
    items[1]["startTimeUnixNano"] = "123456789012345678901234567890"
    items[2]["spanId"] = "0XSGQd8vX9w="  # base64: kept
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps(doc) + "\n")
    result = runner.invoke(app, ["trace", str(path), "--no-attribute", "--db", str(db), "--json"])
    assert result.exit_code == EXIT_SKIPPED, result.output
    out = json.loads(result.stdout)
    assert out["spans_added"] == 2
    assert {(i["span_id"], i["field"]) for i in out["issues"] if i["severity"] == "error"} == {
        (f"{1:016x}", "attributes"), (f"{2:016x}", "startTimeUnixNano")}
    q = runner.invoke(app, ["query", "SELECT span_id, start_time_unix_nano FROM spans ORDER BY 1", "--db", str(db),
                            "-f", "json"])
    assert [(r["span_id"], r["start_time_unix_nano"]) for r in json.loads(q.stdout)] == [
        (f"{4:016x}", 1003), ("d1748641df2f5fdc", 1002)]
