"""The Aider importers with per-request contexts: ``--llm-history-file`` alone (one trajectory, one
context per request) and joined with ``.aider.chat.history.md``; interrupted and cut-off requests
are reported with their line and skipped, and no cut of the log makes the reader fail."""

from __future__ import annotations

import pytest

from auditor.collectors.aider import load_llm_history
from auditor.collectors.aider_join import join_aider
from auditor.collectors.loading import load_paths
from auditor.trajectory import ActionKind, Trajectory

from helpers.aider_logs import chat_session, llm_call
from helpers.contexts import NEW, OLD, REPLY_1, REPLY_2, REQUEST_1, REQUEST_2, request_messages

COMMIT_SYSTEM = "You are an expert software engineer that generates concise, one-line Git commit messages."
COMMIT_REPLY = "fix: add returns the sum"
INTERRUPTED = "Also add a docstring to add."


def _prompt(k: int) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in request_messages(k)[:-1]]


def _log(*, first: bool = True, tail: bool = True) -> str:
    """Request 1, Aider's commit-message call, request 2, an interrupted request, a log cut mid-call."""
    text = llm_call(_prompt(1), REPLY_1, "2026-02-01T10:00:05", "2026-02-01T10:00:09") if first else ""
    text += llm_call([{"role": "system", "content": COMMIT_SYSTEM}, {"role": "user", "content": "diff --git a/app/util.py"}],
                     COMMIT_REPLY, "2026-02-01T10:00:10", "2026-02-01T10:00:11")
    text += llm_call(_prompt(2), REPLY_2, "2026-02-01T10:01:00", "2026-02-01T10:01:06")
    if tail:
        interrupted = [*_prompt(2), {"role": "assistant", "content": REPLY_2}, {"role": "user", "content": INTERRUPTED}]
        text += llm_call(interrupted, None, "2026-02-01T10:02:00")
        text += "TO LLM 2026-02-01T10:03:00\n-------\nSYSTEM " + request_messages(1)[0].content + "\n-------\nUSER I have"
    return text


def _chat() -> str:
    return chat_session("2026-02-01 10:00:00", [(REQUEST_1, REPLY_1), (REQUEST_2, REPLY_2), (INTERRUPTED, None)])


@pytest.fixture
def files(tmp_path):
    chat, log = tmp_path / ".aider.chat.history.md", tmp_path / ".aider.llm.history"
    chat.write_text(_chat())
    log.write_text(_log())
    return chat, log


def test_llm_history_is_one_trajectory_with_one_context_per_request(files):
    _, log = files
    (traj,), issues = load_llm_history(log)
    assert traj.id == ".aider.llm.history" and traj.metadata["calls"] == 5 and traj.metadata["requests"] == 3
    assert [c.id for c in traj.contexts] == ["req1", "req2", "req3"]
    req1, commit, req3 = traj.contexts  # ids: the call's place in the log
    assert [m.content for m in req1.messages] == [m.content.rstrip("\n") for m in request_messages(1)]
    assert OLD.strip() in req1.messages[1].content and NEW.strip() in req3.messages[3].content
    assert commit.reply.content == COMMIT_REPLY and req3.metadata["sent_at"] == "2026-02-01T10:01:00"
    assert req3.reply.metadata["latency_s"] == 6.0
    assert [(a.kind, a.context_id, a.message_index) for a in traj.actions] == [
        (ActionKind.code_edit, "req1", 4), (ActionKind.code_edit, "req3", 6)]
    assert "a - b" in traj.actions[0].edit.search and "def mul" in traj.actions[1].edit.replace
    assert [m.content for m in traj.messages] == [m.content for m in req3.messages]
    # the interrupted request and the cut-off one: reported with their lines, skipped
    lines = _log().splitlines()
    assert sorted((i.line, i.severity, i.message.split(";")[0]) for i in issues) == [
        (lines.index("TO LLM 2026-02-01T10:02:00") + 1, "error", "model call without 'LLM RESPONSE' (interrupted?)"),
        (lines.index("TO LLM 2026-02-01T10:03:00") + 1, "error",
         "model call without 'LLM RESPONSE' (log ends mid-call)")]


def test_joined_session_has_the_chat_turns_and_each_requests_context(files):
    chat, log = files
    (traj,), issues = join_aider(chat, [log])
    assert traj.id == ".aider.chat.history.md:0" and traj.metadata["format"] == "aider"
    assert [m.role for m in traj.messages] == ["user", "assistant", "user", "assistant", "user"]
    assert [m.content for m in traj.messages[::2]] == [REQUEST_1, REQUEST_2, INTERRUPTED]
    assert [c.id for c in traj.contexts] == ["req1", "req2", "req3"]
    edits = [(a.id, a.kind, a.context_id, a.message_index) for a in traj.actions]
    assert edits == [(f"{traj.id}:a0", ActionKind.code_edit, "req1", 4), (f"{traj.id}:a1", ActionKind.code_edit, "req3", 6)]
    assert traj.context("req1").metadata["edit_format"] == "diff"  # the chat history's banner
    lines = _log().splitlines()
    skipped = sorted((i.file, i.line) for i in issues if i.severity == "error")
    assert skipped == [(str(log), lines.index("TO LLM 2026-02-01T10:02:00") + 1),
                       (str(log), lines.index("TO LLM 2026-02-01T10:03:00") + 1)]
    assert not [i for i in issues if i.severity == "warning"]  # every chat reply found its call
    (note,) = [i for i in issues if i.severity == "info"]
    assert note.file == str(log) and "model call req2 is not in the chat history" in note.message
    again = Trajectory.model_validate_json(traj.to_jsonl_line())
    assert again == traj


def test_a_reply_without_its_call_stays_in_the_chat_conversation(tmp_path):
    chat, log = tmp_path / ".aider.chat.history.md", tmp_path / "llm.log"
    chat.write_text(_chat())
    log.write_text(_log(first=False, tail=False))  # the log was started after the first request
    (traj,), issues = join_aider(chat, [log])
    assert [(a.context_id, a.message_index) for a in traj.actions] == [(None, 1), ("req2", 6)]
    (warning,) = [i for i in issues if i.severity == "warning"]
    assert warning.file == str(chat) and warning.line == traj.messages[1].metadata["line"]
    assert "no model call in the LLM history" in warning.message


def test_load_paths_joins_the_two_records_of_one_folder(files):
    chat, log = files
    result = load_paths([chat, log])
    (traj,) = result.trajectories
    assert traj.metadata["format"] == "aider" and len(traj.contexts) == 3
    alone = load_paths([log])
    assert [t.id for t in alone.trajectories] == [".aider.llm.history"]


@pytest.mark.parametrize("cut", ["lines", "chars"])
def test_no_cut_of_the_log_crashes_the_reader(tmp_path, cut):
    text = _log()
    points = [sum(len(l) + 1 for l in text.splitlines()[:n]) for n in range(len(text.splitlines()) + 1)] \
        if cut == "lines" else range(0, len(text), 7)
    log = tmp_path / "llm.log"
    for at in points:
        log.write_text(text[:at])
        trajs, issues = load_llm_history(log)
        for t in trajs:
            assert Trajectory.model_validate_json(t.to_jsonl_line()) == t
            assert all(a.context_id in {c.id for c in t.contexts} for a in t.actions)
        assert len(trajs) <= 1


def test_a_reply_cut_inside_an_edit_block_is_reported(tmp_path):
    log = tmp_path / "llm.log"
    cut = REPLY_2[:REPLY_2.index("=======")]
    first = llm_call(_prompt(1), REPLY_1, "2026-02-01T10:00:05")
    log.write_text(first + llm_call(_prompt(2), cut, "2026-02-01T10:01:00"))  # the file ends there: cut off
    (traj,), issues = load_llm_history(log)
    assert [c.id for c in traj.contexts] == ["req1"] and [a.context_id for a in traj.actions] == ["req1"]
    (issue,) = issues
    assert issue.severity == "error" and "log ends inside an edit block" in issue.message
    assert issue.line == len(first.splitlines()) + 1
    # a reply the model itself stopped inside a block (more of the log follows): kept, the block is no action
    log.write_text(first + llm_call(_prompt(2), cut, "2026-02-01T10:01:00") + first)
    (traj,), issues = load_llm_history(log)
    assert [c.id for c in traj.contexts] == ["req1", "req2", "req3"]
    assert [a.context_id for a in traj.actions if a.kind is ActionKind.code_edit] == ["req1", "req3"]
    (issue,) = issues
    assert issue.severity == "warning" and "reply ends inside an edit block" in issue.message
