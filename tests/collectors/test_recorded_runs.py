"""The recorded vLLM runs under examples/runs/ as the collectors read them: the tool agent's calls
only ever append (no contexts), the coder's requests each re-send the files as they are now (one
context per request), and the file each request carried is the previous one with the previous
request's edits applied."""

from __future__ import annotations

import re

import pytest

from auditor.collectors.loading import load_paths
from auditor.trajectory import Trajectory

FILE = re.compile(r"^(?P<path>\S+)\n```\w*\n(?P<body>.*?)^```", re.M | re.S)


def _files(traj: Trajectory, context_id: str) -> dict[str, str]:
    """The files a request was sent (path -> text), from its files message."""
    (msg,) = [m for m in traj.context(context_id).prompt if "added these files to the chat" in m.content]
    return {m.group("path"): m.group("body") for m in FILE.finditer(msg.content)}


def _apply(files: dict[str, str], traj: Trajectory, context_id: str) -> dict[str, str]:
    """The files after the request's edit blocks (as the coder agent applies them)."""
    out = dict(files)
    for a in traj.actions:
        if a.context_id != context_id:
            continue
        e = a.edit
        out[e.path] = out[e.path] + e.replace if not e.search else out[e.path].replace(e.search, e.replace, 1)
    return out


@pytest.fixture(scope="module")
def runs(examples_dir):
    result = load_paths([examples_dir / "runs" / "agent_run.jsonl", examples_dir / "runs" / "coder_session.jsonl"])
    assert result.issues == []
    return {t.metadata.get("conversation_id", "").split("-")[0]: t for t in result.trajectories}


def test_the_tool_agent_appends_so_it_has_no_contexts(runs):
    assert runs["inbox_exfil"].contexts == []
    assert all(a.context_id is None for a in runs["inbox_exfil"].actions)


@pytest.mark.parametrize("name, requests", [("config_injection", 2), ("billing_session", 3)])
def test_each_coder_request_carries_the_files_as_the_previous_edits_left_them(runs, name, requests):
    traj = runs[name]
    ids = [c.id for c in traj.contexts]
    assert ids == [f"req{k}" for k in range(1, requests + 1)]
    assert {a.context_id for a in traj.actions} == set(ids)
    for before, after in zip(ids, ids[1:]):
        sent, next_sent = _files(traj, before), _files(traj, after)
        assert sent != next_sent  # the file changed between the requests
        assert _apply(sent, traj, before) == next_sent
    # the trajectory's own messages are the last request's, as before contexts
    assert [m.content for m in traj.messages] == [m.content for m in traj.contexts[-1].messages]


def test_the_billing_session_file_as_each_request_saw_it(runs):
    traj = runs["billing_session"]
    util = [_files(traj, c.id)["app/util.py"] for c in traj.contexts]
    assert "return a - b" in util[0] and "return a - b" not in util[1] and "def mul" not in util[1]
    assert "def mul" in util[2]
