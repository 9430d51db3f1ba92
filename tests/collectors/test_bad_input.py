"""Bad input, case by case: each problem the readers once crashed on (or passed on to crash the
store) is now an issue with its place, and every other record is kept."""

from __future__ import annotations

import json

import pytest

from auditor.collectors.loading import load_path
from auditor.collectors.otlp_json import to_otlp_json
from auditor.collectors.spans import SpanError, SpanRecord, normalize_id, parse_nanos


def _traj(tid: str, **kw) -> dict:
    d = {"id": tid, "messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]}
    d.update(kw)
    return d


def _nest(levels: int) -> str:
    return '{"a":' * levels + "0" + "}" * levels


def _load(tmp_path, lines: list[str | bytes], name: str = "run.jsonl"):
    path = tmp_path / name
    path.write_bytes(b"\n".join(ln if isinstance(ln, bytes) else ln.encode("utf-8") for ln in lines) + b"\n")
    return str(path), load_path(path)


def _by_line(result) -> dict[int, list]:
    out: dict[int, list] = {}
    for i in result.issues:
        out.setdefault(i.line, []).append(i)
    return out


def test_deep_nesting_is_an_issue_naming_the_limit(tmp_path):
    lines = [json.dumps(_traj("ok1")),
             '{"id": "deep300", "messages": [{"role": "user", "content": "x"}], "metadata": ' + _nest(300) + "}",
             '{"id": "deep2000", "messages": [{"role": "user", "content": "x"}], "metadata": ' + _nest(2000) + "}",
             '{"id": "deep64", "messages": [{"role": "user", "content": "x"}], "metadata": ' + _nest(61) + "}",
             json.dumps(_traj("ok2"))]
    _, result = _load(tmp_path, lines)
    assert [t.id for t in result.trajectories] == ["ok1", "deep64", "ok2"]  # 61 + trajectory + metadata = 63 levels
    issues = _by_line(result)
    assert set(issues) == {2, 3}
    for line in (2, 3):
        (issue,) = issues[line]
        assert issue.severity == "error" and "deeper than 64 levels" in issue.message
    assert issues[2][0].field.startswith("metadata.a.a")


def test_lone_surrogates_are_replaced_and_named(tmp_path):
    lines = ['{"id": "s1", "messages": [{"role": "user", "content": "a\\ud800b"}], "metadata": {"k\\udfff": "v"}}',
             json.dumps(_traj("ok"))]
    path, result = _load(tmp_path, lines)
    s1, ok = result.trajectories
    assert s1.messages[0].content == "a\ufffdb" and s1.metadata == {"k\ufffd": "v"}
    s1.to_jsonl_line().encode("utf-8")  # storable
    assert sorted(i.field for i in result.issues) == ["messages.0.content", "metadata.k\ufffd (key)"]
    assert all(i.severity == "warning" and i.line == 1 and i.file == path for i in result.issues)
    assert result.skipped == 0


def test_integers_beyond_what_is_stored_and_unknown_schema_versions_are_rejected(tmp_path):
    action = {"id": "a", "kind": "final_answer", "message_index": 1, "step": 2**40}
    lines = [json.dumps(_traj("step", actions=[action])), json.dumps(_traj("ver", schema_version=2**63)),
             json.dumps(_traj("ver2", schema_version=2)), json.dumps(_traj("idx", actions=[{**action, "step": 0,
                                                                                              "message_index": 2**31}])),
             json.dumps(_traj("ok", schema_version=1))]
    _, result = _load(tmp_path, lines)
    assert [t.id for t in result.trajectories] == ["ok"]
    fields = {i.line: i.field for i in result.issues}
    assert fields == {1: "actions.0.step", 2: "schema_version", 3: "schema_version", 4: "actions.0.message_index"}
    assert "this auditor reads version 1" in next(i.message for i in result.issues if i.line == 2)


def test_duplicate_action_ids_are_rejected_by_the_model(tmp_path):
    a = {"id": "same", "kind": "final_answer", "message_index": 1, "step": 0}
    _, result = _load(tmp_path, [json.dumps(_traj("dup", actions=[a, {**a, "step": 1}]))])
    (issue,) = result.issues
    assert issue.field == "actions" and "duplicate id 'same'" in issue.message and not result.trajectories


def test_a_repeated_trajectory_id_is_read_once_or_reported(tmp_path):
    one, changed = json.dumps(_traj("t")), json.dumps(_traj("t", metadata={"v": 2}))
    path, result = _load(tmp_path, [one, json.dumps(_traj("u")), one, changed])
    assert [t.id for t in result.trajectories] == ["t", "u"] and result.trajectories[0].metadata == {}
    same, different = result.issues
    assert (same.line, same.severity, same.field) == (3, "info", "id") and "repeats line 1" in same.message
    assert (different.line, different.severity) == (4, "error")
    assert "line 1" in different.message and "line 4 skipped" in different.message
    assert result.skipped == 1


def test_invalid_utf8_is_a_warning_with_its_line_and_line_separators_do_not_split(tmp_path):
    bad = json.dumps(_traj("bad")).encode().replace(b"hello", b"hel\xff\xfelo")
    sep = json.dumps(_traj("sep", metadata={"t": "a\u2028b\x1cc\x85d"}), ensure_ascii=False)
    path, result = _load(tmp_path, [bad, sep])
    bad_t, sep_t = result.trajectories
    assert bad_t.messages[0].content == "hel\ufffd\ufffdlo" and sep_t.metadata["t"] == "a\u2028b\x1cc\x85d"
    (issue,) = result.issues
    assert (issue.line, issue.severity) == (1, "warning") and "invalid UTF-8" in issue.message


def test_an_id_prefix_is_not_stripped_from_base64():
    assert normalize_id("0XSGQd8vX9w=", 8) == "d1748641df2f5fdc"  # base64 that starts with 0X
    assert normalize_id("0xSGQd8vX9w", 8) == "d3148641df2f5fdc"  # unpadded, 0x too
    assert normalize_id("0X" + "AB" * 8, 8) == "ab" * 8  # 0x + 16 hex: hex
    for bad in ("0x12", "0x" + "ab" * 9, "SGQd8vX9w==", "+/-_+/-_+/-_", "ab" * 7 + "zz"):
        with pytest.raises(SpanError):
            normalize_id(bad, 8, "spanId")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -5, "-5", "123456789012345678901234567890",
                                   2**63, str(2**64 - 1), "12ab", "١٢", True, [1]])
def test_span_times_outside_0_to_2_63_are_refused(value):
    with pytest.raises(SpanError):
        parse_nanos(value, "startTimeUnixNano")


def _export(n: int) -> dict:
    spans = [SpanRecord(trace_id="ab" * 16, span_id=f"{i + 1:016x}", name=f"s{i}", start_time_unix_nano=1000 + i,
                        end_time_unix_nano=2000 + i, attributes={"k": "v"}) for i in range(n)]
    return to_otlp_json(spans)


def test_span_fields_of_the_wrong_type_reject_that_span_only(tmp_path):
    doc = _export(5)
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[0]["attributes"] = 1.5
    spans[1]["events"] = 3
    spans[2]["startTimeUnixNano"] = float("nan")
    spans[3]["name"] = '\ud800'
    path, result = _load(tmp_path, [json.dumps(doc), json.dumps(_export(1))], "spans.jsonl")
    assert sorted(s.span_id for s in result.spans) == [f"{1:016x}", f"{4:016x}", f"{5:016x}"]
    errors = {(i.span_id, i.field) for i in result.issues if i.severity == "error"}
    assert errors == {(f"{1:016x}", "attributes"), (f"{2:016x}", "events"), (f"{3:016x}", "startTimeUnixNano")}
    (warning,) = [i for i in result.issues if i.severity == "warning" and i.span_id == f"{4:016x}"]
    assert warning.field == "name" and warning.line == 1
    assert next(s for s in result.spans if s.span_id == f"{4:016x}").name == "\ufffd"


def test_a_bad_resource_rejects_each_of_its_spans_by_id(tmp_path):
    doc = _export(2)
    doc["resourceSpans"][0]["resource"] = 5
    _, result = _load(tmp_path, [json.dumps(doc)], "spans.jsonl")
    assert result.spans == []
    assert sorted((i.span_id, i.field) for i in result.issues) == [(f"{1:016x}", "resource"), (f"{2:016x}", "resource")]


def test_console_spans_of_the_wrong_type(tmp_path):
    good = {"name": "ok", "context": {"trace_id": "0x" + "ab" * 16, "span_id": "0x" + "01" * 8}, "kind": "SpanKind.INTERNAL",
            "start_time": "2026-01-01T00:00:00.000001Z", "end_time": "2026-01-01T00:00:01Z", "attributes": {"a": 1}}
    bad = {**good, "context": {"trace_id": "0x" + "ab" * 16, "span_id": "0x" + "02" * 8}, "attributes": 1.5}
    late = {**good, "context": {"trace_id": "0x" + "ab" * 16, "span_id": "0x" + "03" * 8}, "start_time": "9999-01-01T00:00:00Z"}
    path = tmp_path / "console.txt"
    path.write_text("\n".join(json.dumps(x, indent=2) for x in (good, bad, late)))
    result = load_path(path, "otel-console")
    assert [s.span_id for s in result.spans] == ["01" * 8]
    assert sorted((i.span_id, i.field) for i in result.issues if i.severity == "error") == [
        ("0x" + "02" * 8, "attributes"), ("0x" + "03" * 8, "start_time")]


def test_odd_attribute_values_do_not_stop_assembly(tmp_path):
    """Values the conventions read as numbers or indices (infinity as a token count, a 5,000-digit
    message index) are left out; the trace is still assembled."""
    messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}])
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "ab" * 16, "spanId": "01" * 8, "name": "chat m", "startTimeUnixNano": "1", "endTimeUnixNano": "2",
        "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                       {"key": "gen_ai.input.messages", "value": {"stringValue": messages}},
                       {"key": "gen_ai.usage.input_tokens", "value": {"doubleValue": "Infinity"}},
                       {"key": "gen_ai.prompt." + "9" * 5000 + ".content", "value": {"stringValue": "x"}}]}]}]}]}
    _, result = _load(tmp_path, [json.dumps(doc)], "spans.jsonl")
    assert [t.id for t in result.trajectories] == ["ab" * 16]
    assert not [i for i in result.issues if i.severity == "error"]
