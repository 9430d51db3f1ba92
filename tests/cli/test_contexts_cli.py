"""`audit trace` and `audit show` on an Aider LLM history of several requests (model-free replay):
each action names its request and `show` lists what that request was sent."""

from __future__ import annotations

import json

from auditor.cli import app
from auditor.cli.app import EXIT_OK

from helpers.aider_logs import llm_call
from helpers.contexts import NEW, OLD, REPLY_1, REPLY_2, request_messages


def _log(tmp_path):
    def prompt(k):
        return [{"role": m.role, "content": m.content} for m in request_messages(k)[:-1]]

    path = tmp_path / ".aider.llm.history"
    path.write_text(llm_call(prompt(1), REPLY_1, "2026-02-01T10:00:05", "2026-02-01T10:00:09")
                    + llm_call(prompt(2), REPLY_2, "2026-02-01T10:01:00", "2026-02-01T10:01:06"))
    return path


def test_trace_and_show_name_the_request_and_its_context(runner, db, tmp_path, fake_auditor):
    log = _log(tmp_path)
    result = runner.invoke(app, ["trace", str(log), "--db", str(db), "--json"])
    assert result.exit_code == EXIT_OK, result.output
    (audit,) = json.loads(result.stdout)["audits"]
    assert [(a["action_id"], a["context_id"], a["request"]) for a in audit["actions"]] == [
        (".aider.llm.history:a0", "req1", 1), (".aider.llm.history:a1", "req2", 2)]
    table = runner.invoke(app, ["trace", str(log), "--db", str(db)])
    assert "request 2 of 2 (req2)" in table.stdout

    shown = runner.invoke(app, ["show", ".aider.llm.history:a0", "--db", str(db)], terminal_width=160)
    assert shown.exit_code == EXIT_OK, shown.output
    assert "request 1 of 2 (req1)" in shown.stdout and "sent 2026-02-01T10:00:05" in shown.stdout
    assert "context: what request 1 of 2 was sent, then its reply" in shown.stdout
    data = json.loads(runner.invoke(app, ["show", ".aider.llm.history:a0", "--db", str(db), "--json"]).stdout)
    ctx = data["context"]
    assert (ctx["id"], ctx["request"], ctx["requests"]) == ("req1", 1, 2)
    assert OLD.strip() in ctx["messages"][1]["content"] and ctx["messages"][-1]["content"] == REPLY_1
    assert all(d["context_id"] == "req1" for d in data["drivers"])
    second = json.loads(runner.invoke(app, ["show", ".aider.llm.history:a1", "--db", str(db), "--json"]).stdout)
    assert NEW.strip() in second["context"]["messages"][3]["content"]


def test_trace_joins_an_aider_chat_and_its_llm_history(runner, db, tmp_path, fake_auditor):
    """Given together, the two records of one Aider session are one trajectory (as `load_paths`
    joins them), not two imported file by file."""
    from helpers.aider_logs import chat_session
    from helpers.contexts import REQUEST_1, REQUEST_2

    log = _log(tmp_path)
    chat = tmp_path / ".aider.chat.history.md"
    chat.write_text(chat_session("2026-02-01 10:00:00", [(REQUEST_1, REPLY_1), (REQUEST_2, REPLY_2)]))
    result = runner.invoke(app, ["trace", str(chat), str(log), "--db", str(db), "--json"])
    assert result.exit_code == EXIT_OK, result.output
    (audit,) = json.loads(result.stdout)["audits"]
    assert [a["request"] for a in audit["actions"]] and all(a["context_id"] for a in audit["actions"])
    alone = runner.invoke(app, ["trace", str(log), "--db", str(tmp_path / "other.duckdb"), "--json"])
    assert json.loads(alone.stdout)["audits"][0]["trajectory_id"] != audit["trajectory_id"]
