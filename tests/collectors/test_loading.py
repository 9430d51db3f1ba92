from __future__ import annotations

import json

from auditor.collectors.loading import load_path, sniff_format


def _good(i: int) -> str:
    return json.dumps({"id": f"t{i}", "messages": [{"role": "user", "content": "hello"},
                                                   {"role": "assistant", "content": "hi"}]})


def test_bad_lines_are_reported_with_line_and_field_and_valid_lines_load(tmp_path):
    lines = [
        _good(1),
        "{not json",
        json.dumps({"id": "t3", "messages": [{"role": "user", "content": "x"},
                                             {"role": "tool", "tool_call_id": "missing", "content": "y"}]}),
        json.dumps({"id": "t4", "messages": [{"content": "no role here"}]}),
        "",
        _good(6),
        '["an array"]',
        '{"id": "t8", "messages": [{"role": "user", "content": "trunc',  # truncated last line
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines))
    result = load_path(path)
    assert [t.id for t in result.trajectories] == ["t1", "t6"]
    by_line = {i.line: i for i in result.issues}
    assert set(by_line) == {2, 3, 4, 7, 8}
    assert "invalid JSON" in by_line[2].message
    assert "unknown call id 'missing'" in by_line[3].message
    assert by_line[4].field == "messages.0.role" and "required" in by_line[4].message.lower()
    assert "expected a JSON object" in by_line[7].message
    assert all(i.file == str(path) for i in result.issues)
    assert str(by_line[4]).startswith(f"{path}:4 field messages.0.role: ")
    assert result.skipped == 5


def test_missing_file_is_an_issue_not_a_crash(tmp_path):
    result = load_path(tmp_path / "nope.jsonl")
    assert result.trajectories == [] and "file not found" in result.issues[0].message


def test_sniffing(tmp_path, examples_dir):
    assert sniff_format(examples_dir / "injected_email.jsonl") == "trajectory-jsonl"
    otlp = tmp_path / "run.jsonl"
    otlp.write_text('{"resourceSpans": []}\n')
    assert sniff_format(otlp) == "otlp-json"
    llm = tmp_path / "llm.log"
    llm.write_text("TO LLM 2026-01-01T00:00:00\nSYSTEM hi\n")
    assert sniff_format(llm) == "aider-llm-history"
    md = tmp_path / ".aider.chat.history.md"
    md.write_text("# aider chat started at 2026-01-01 10:00:00\n")
    assert sniff_format(md) == "aider-chat-history"


def test_edit_format_whole_in_metadata_yields_a_code_edit(tmp_path):
    """A JSONL trajectory whose metadata says Aider's ``whole`` edit format loads with its whole-file
    edit as a code-edit action (not as a final answer: the edit would be lost)."""
    reply = "app/util.py\n```python\ndef add(a, b):\n    return a + b\n```\n"
    line = json.dumps({"id": "w1", "metadata": {"edit_format": "whole"},
                       "messages": [{"role": "user", "content": "Add an add function to app/util.py"},
                                    {"role": "assistant", "content": reply}]})
    path = tmp_path / "whole.jsonl"
    path.write_text(line + "\n")
    result = load_path(path)
    assert result.issues == []
    (traj,) = result.trajectories
    kinds = [a.kind.value for a in traj.actions]
    assert kinds == ["code_edit"], kinds
    edit = traj.actions[0].edit
    assert edit is not None and edit.path == "app/util.py" and edit.format == "whole"
    assert "return a + b" in edit.replace
