"""Aider importers: chat history Markdown and --llm-history-file logs."""

from __future__ import annotations

from auditor.collectors.aider import load_chat_history, load_llm_history
from auditor.collectors.loading import load_path, sniff_format
from auditor.trajectory import ActionKind


def test_chat_history_sessions_messages_and_edit_actions(data_dir):
    path = data_dir / ".aider.chat.history.md"
    assert sniff_format(path) == "aider-chat-history"
    res = load_path(path)
    first, second = res.trajectories
    (issue,) = res.issues  # third session: only a /add command
    assert issue.severity == "warning" and issue.line == 77
    assert first.source == "aider" and first.metadata["started_at"] == "2026-01-05 09:14:02"
    assert first.metadata["model"] == "openai/smollm2" and first.metadata["edit_format"] == "diff"
    assert [m.role for m in first.messages] == ["user", "assistant", "user", "assistant"]
    assert first.messages[0].content == "make greet() take a name argument\nand add a test"
    assert first.messages[2].content == "is the test enough?" and first.messages[2].metadata["command"] == "/ask"
    edits = [a for a in first.actions if a.kind == ActionKind.code_edit]
    assert [e.edit.path for e in edits] == ["greet.py", "tests/test_greet.py"]
    assert edits[1].edit.search == "" and "def test_greet" in edits[1].edit.replace
    reply = first.messages[1].content
    assert reply[edits[0].char_start:edits[0].char_end].startswith("greet.py\n```python\n<<<<<<< SEARCH")
    assert first.actions[-1].kind == ActionKind.final_answer and first.actions[-1].message_index == 3
    # Aider's own output is metadata, not conversation; a quote-like line inside code stays
    meta = first.messages[1].metadata
    assert "Applied edit to greet.py" in meta["aider_output"]
    assert meta["usage"] == {"input_tokens": 2400, "output_tokens": 131}
    assert meta["aider_commands"][0]["command"] == "/run pytest -q"
    assert meta["aider_commands"][0]["output"][0] == "1 passed in 0.01s"
    assert "> this quote-like line is inside code and stays" in first.messages[3].content
    assert "Applied edit" not in reply
    # whole-file format, extensionless path
    assert second.metadata["edit_format"] == "whole"
    (edit,) = second.actions
    assert edit.kind == ActionKind.code_edit and edit.edit.path == "VERSION" and edit.edit.replace == "1.1\n"


def test_llm_history_one_context_per_call_with_reply_actions_only(data_dir):
    path = data_dir / "aider_llm_history.txt"
    assert sniff_format(path) == "aider-llm-history"
    res = load_path(path)
    (traj,) = res.trajectories
    first, second = traj.contexts
    roles = [m.role for m in first.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant", "user", "system", "assistant"]
    assert first.messages[0].content.startswith("Act as an expert software developer.\nAlways use best practices")
    assert "\n\n# Example conversations:" in first.messages[0].content  # "SYSTEM " lines are blank lines
    # the few-shot example's SEARCH/REPLACE block is prompt, not an action of this call
    edit, answer = traj.actions
    assert edit.kind == ActionKind.code_edit and edit.edit.path == "greet.py" and edit.message_index == 9
    assert edit.context_id == "req1" and edit.id == f"{traj.id}:a0" and edit.step == 0
    assert first.metadata["sent_at"] == "2026-01-05T09:14:05" and first.messages[-1].metadata["latency_s"] == 4.0
    assert second.messages[-1].content == "It prints `hello` followed by the name."
    assert (answer.kind, answer.context_id) == (ActionKind.final_answer, "req2")
    problems = sorted((i.line, i.message.split(";")[0]) for i in res.issues)
    assert problems == [(60, "'LLM RESPONSE' without a preceding 'TO LLM'"),
                        (62, "model call without 'LLM RESPONSE' (log ends mid-call)")]


def test_udiff_and_whole_detection_in_llm_history(tmp_path):
    log = tmp_path / "llm.log"
    log.write_text(
        "TO LLM 2026-01-01T00:00:00\n-------\n"
        "SYSTEM Return edits as unified diffs, like `diff -U0` would produce.\n-------\nUSER rename x\n"
        "LLM RESPONSE 2026-01-01T00:00:02\n"
        "ASSISTANT ```diff\nASSISTANT --- a.py\nASSISTANT +++ a.py\nASSISTANT @@ ... @@\nASSISTANT -x = 1\n"
        "ASSISTANT +y = 1\nASSISTANT --- b.py\nASSISTANT +++ b.py\nASSISTANT @@ ... @@\nASSISTANT -print(x)\n"
        "ASSISTANT +print(y)\nASSISTANT ```\n"
        "TO LLM 2026-01-01T00:01:00\n-------\nSYSTEM If you change a file, return a *file listing* of it.\n"
        "-------\nUSER write hello\nLLM RESPONSE 2026-01-01T00:01:01\n"
        "ASSISTANT hello.py\nASSISTANT ```\nASSISTANT print('hello')\nASSISTANT ```\n")
    (traj,), issues = load_llm_history(log)
    assert issues == []
    assert [(a.context_id, a.edit.path, a.edit.format) for a in traj.actions] == [
        ("req1", "a.py", "udiff"), ("req1", "b.py", "udiff"), ("req2", "hello.py", "whole")]
    assert traj.actions[1].edit.search == "print(x)\n"
    assert "edit_format" not in traj.metadata  # each call has its own


def test_chat_history_without_header_is_read_with_a_warning(tmp_path):
    md = tmp_path / ".aider.chat.history.md"
    md.write_text("#### hi  \n\nHello! How can I help?\n")
    trajs, issues = load_chat_history(md)
    assert [m.content for m in trajs[0].messages] == ["hi", "Hello! How can I help?"]
    assert issues[0].severity == "warning" and issues[0].line == 1
