"""Aider importers: ``.aider.chat.history.md`` and ``--llm-history-file`` logs -> trajectories
whose actions are the edit blocks of the assistant replies (SEARCH/REPLACE, whole-file, udiff).

- Chat history (Markdown, append-only): one trajectory per launch (``# aider chat started at``).
  ``#### `` lines are the user's input, ``> `` lines Aider's own output (kept as message metadata
  under ``aider_output``: they were not sent to the model as such), the rest is the assistant's
  reply. Slash commands are metadata too, except ``/ask``, ``/code`` and ``/architect``
  whose text is the request. The edit format comes from the ``> Model: ... with X edit format``
  banner when present.
- LLM history (plain text): one trajectory per model call: the full prompt (``TO LLM``, every
  line prefixed by its role, ``-------`` between messages) plus the reply (``LLM RESPONSE``).
  This is the only record of what the model really saw (system prompt, repo map, files).
  Actions are taken from the reply only: edit blocks quoted in the prompt (Aider's few-shot
  examples, earlier turns) are context, not things this call did.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from auditor.actions import derive_actions
from auditor.collectors.issues import LoadIssue
from auditor.collectors.sanitize import check_trajectory, lines_of, read_text
from auditor.trajectory import Action, Message, Trajectory

_STARTED = re.compile(r"^# aider chat started at (?P<ts>.+?)\s*$")
_MODEL = re.compile(r"^Model: (?P<model>\S+)(?: with (?P<fmt>[\w-]+) edit format)?")
_TOKENS = re.compile(r"Tokens: (?P<sent>[\d.]+)(?P<sk>k?) sent.*?(?P<recv>[\d.]+)(?P<rk>k?) received", re.I)
_FENCE = re.compile(r"^(```|~~~)")
_REQUEST_COMMANDS = ("/ask", "/code", "/architect", "/context")
_FORMATS = {"diff": "diff", "diff-fenced": "diff-fenced", "whole": "whole", "udiff": "udiff",
            "editor-diff": "diff", "editor-whole": "whole", "editor-diff-fenced": "diff-fenced", "udiff-simple": "udiff"}
_ROLE_PREFIX = re.compile(r"^(SYSTEM|USER|ASSISTANT|TOOL|FUNCTION)(?: (.*))?$")
_TO_LLM = re.compile(r"^TO LLM(?: (?P<ts>\S+))?\s*$")
_RESPONSE = re.compile(r"^LLM RESPONSE(?: (?P<ts>\S+))?\s*$")


def _tokens(n: str, k: str) -> int:
    return int(float(n) * (1000 if k else 1))


def _actions(traj: Trajectory, fmt: str | None, only_message: int | None = None) -> list[Action]:
    actions = derive_actions(traj, fmt)
    if only_message is not None:
        kept = [a for a in actions if a.message_index == only_message]
        actions = [a.model_copy(update={"id": f"{traj.id}:a{i}", "step": i}) for i, a in enumerate(kept)]
    return actions


# -- .aider.chat.history.md --------------------------------------------------------------------------


class _Session:
    def __init__(self, start_line: int, started: str | None):
        self.start_line = start_line
        self.started = started
        self.messages: list[dict[str, Any]] = []  # {"role","lines","line","meta"}
        self.notes: list[str] = []  # Aider output before the first message
        self.model: str | None = None
        self.edit_format: str | None = None

    def current(self, role: str, line: int) -> dict[str, Any]:
        if not self.messages or self.messages[-1]["role"] != role:
            self.messages.append({"role": role, "lines": [], "line": line, "meta": {}})
        return self.messages[-1]

    def note(self, text: str) -> None:
        target = self.messages[-1]["meta"] if self.messages else None
        if target is None:
            self.notes.append(text)
        else:
            target.setdefault("aider_output", []).append(text)
        m = _MODEL.match(text)
        if m and self.model is None:
            self.model = m.group("model")
            if m.group("fmt"):
                self.edit_format = _FORMATS.get(m.group("fmt"))
        t = _TOKENS.search(text)
        if t and self.messages and self.messages[-1]["role"] == "assistant":
            self.messages[-1]["meta"]["usage"] = {"input_tokens": _tokens(t.group("sent"), t.group("sk")),
                                                  "output_tokens": _tokens(t.group("recv"), t.group("rk"))}


def load_chat_history(path: str | Path) -> tuple[list[Trajectory], list[LoadIssue]]:
    path = Path(path)
    file = str(path)
    issues: list[LoadIssue] = []
    sessions: list[_Session] = []
    session: _Session | None = None
    in_fence = False
    last_user_line = -1
    text = read_text(path, issues)
    for lineno, line in enumerate(lines_of(text), start=1):
        m = _STARTED.match(line)
        if m and not in_fence:
            session = _Session(lineno, m.group("ts"))
            sessions.append(session)
            continue
        if session is None:
            if line.strip():
                issues.append(LoadIssue(file, "text before the first '# aider chat started at' line; read as a session "
                                              "without a start time", line=lineno, severity="warning"))
                session = _Session(lineno, None)
                sessions.append(session)
            else:
                continue
        if line.startswith("####") and (line == "####" or line.startswith("#### ")):
            in_fence = False
            if last_user_line != lineno - 1:  # not a continuation line: a new input
                session.messages.append({"role": "user", "lines": [], "line": lineno, "meta": {}})
            session.messages[-1]["lines"].append(line[5:].rstrip())
            last_user_line = lineno
            continue
        if (line.startswith("> ") or line == ">") and not in_fence:
            session.note(line[2:].rstrip())
            continue
        if not session.messages or session.messages[-1]["role"] != "assistant":
            if not line.strip():
                continue  # blank lines between blocks
            session.current("assistant", lineno)
        if _FENCE.match(line.strip()):
            in_fence = not in_fence
        session.messages[-1]["lines"].append(line)

    out = []
    for k, s in enumerate(sessions):
        out.extend(_checked(lambda: _chat_session_trajectory(file, path.name, k, s, issues), file, s.start_line, issues))
    return out, issues


def _checked(build: Any, file: str, line: int, issues: list[LoadIssue]) -> list[Trajectory]:
    """One record built and checked; whatever goes wrong costs that record, with its line."""
    try:
        traj = build()
    except Exception as exc:  # noqa: BLE001 - one record, not the file
        issues.append(LoadIssue(file, f"internal error reading this record ({type(exc).__name__}: {str(exc)[:200]})",
                                line=line))
        return []
    if traj is None:
        return []
    traj, more = check_trajectory(traj, file, line)
    issues.extend(more)
    return [traj] if traj is not None else []


def _chat_session_trajectory(file: str, name: str, k: int, s: _Session, issues: list[LoadIssue]) -> Trajectory | None:
    messages: list[Message] = []
    commands: list[dict[str, Any]] = []
    for m in s.messages:
        content = "\n".join(m["lines"]).strip("\n")
        meta = dict(m["meta"], line=m["line"])
        if m["role"] == "user":
            stripped = content.strip()
            if stripped.startswith("/"):
                cmd, _, rest = stripped.partition(" ")
                if cmd in _REQUEST_COMMANDS and rest.strip():
                    content = rest.strip()
                    meta["command"] = cmd
                else:
                    entry = {"command": stripped, "line": m["line"]}
                    if m["meta"].get("aider_output"):
                        entry["output"] = m["meta"]["aider_output"]
                    commands.append(entry)
                    if messages:
                        messages[-1].metadata.setdefault("aider_commands", []).append(entry)
                    continue
        if not content.strip() and m["role"] == "assistant":
            continue
        messages.append(Message(role=m["role"], content=content, metadata=meta))
    if not messages:
        if s.messages or s.notes:
            issues.append(LoadIssue(file, "aider session with no message to the model (commands or output only)",
                                    line=s.start_line, severity="warning"))
        return None
    meta: dict[str, Any] = {"format": "aider-chat-history", "started_at": s.started, "line": s.start_line}
    if s.model:
        meta["model"] = s.model
    if s.edit_format:
        meta["edit_format"] = s.edit_format
    if s.notes:
        meta["aider_output"] = s.notes
    if commands:
        meta["aider_commands"] = commands
    try:
        traj = Trajectory(id=f"{name}:{k}", source="aider", metadata=meta, messages=messages)
    except ValidationError as exc:
        issues.append(LoadIssue(file, f"session rejected: {exc.errors()[0]['msg']}", line=s.start_line))
        return None
    return traj.model_copy(update={"actions": _actions(traj, s.edit_format)})


# -- --llm-history-file ---------------------------------------------------------------------------------


def _iso(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None


def load_llm_history(path: str | Path) -> tuple[list[Trajectory], list[LoadIssue]]:
    path = Path(path)
    file = str(path)
    issues: list[LoadIssue] = []
    calls: list[dict[str, Any]] = []
    state = "outside"  # outside | prompt | response
    cur: dict[str, Any] | None = None

    def new_message(role: str, line: int) -> dict[str, Any]:
        msg = {"role": role, "lines": [], "line": line}
        assert cur is not None
        cur["messages"].append(msg)
        return msg

    text = read_text(path, issues)
    msg: dict[str, Any] | None = None
    for lineno, line in enumerate(lines_of(text), start=1):
        m = _TO_LLM.match(line)
        if m:
            if cur is not None and state == "prompt":
                issues.append(LoadIssue(file, "model call without 'LLM RESPONSE' (interrupted?); skipped",
                                        line=cur["line"]))
            cur = {"line": lineno, "sent_at": m.group("ts"), "messages": [], "response": None}
            calls.append(cur)
            state, msg = "prompt", None
            continue
        m = _RESPONSE.match(line)
        if m:
            if cur is None or state != "prompt":
                issues.append(LoadIssue(file, "'LLM RESPONSE' without a preceding 'TO LLM'; skipped", line=lineno))
                cur, state = None, "orphan"
                continue
            cur["response"] = {"role": "assistant", "lines": [], "line": lineno}
            cur["received_at"] = m.group("ts")
            state = "response"
            continue
        if state in ("outside", "orphan"):
            if line.strip() and state == "outside":
                issues.append(LoadIssue(file, "text outside any model call; skipped", line=lineno, severity="warning"))
                state = "orphan"
            continue
        assert cur is not None
        if state == "prompt" and line.strip() == "-------":
            msg = None
            continue
        pm = _ROLE_PREFIX.match(line)
        if pm is None:
            if state == "prompt" and not line.strip():
                continue
            target = cur["response"] if state == "response" else msg
            if target is None:
                issues.append(LoadIssue(file, f"line without a role prefix: {line[:40]!r}", line=lineno,
                                        severity="warning"))
                continue
            target["lines"].append(line)
            continue
        role = pm.group(1).lower()
        body = pm.group(2) or ""
        if state == "response":
            cur["response"]["lines"].append(body)
            continue
        if msg is None or msg["role"] != role:
            msg = new_message(role, lineno)
        msg["lines"].append(body)
    if cur is not None and state == "prompt":
        issues.append(LoadIssue(file, "model call without 'LLM RESPONSE' (log ends mid-call); skipped", line=cur["line"]))

    out = []
    for k, c in enumerate(calls):
        if c.get("response") is None:
            continue
        out.extend(_checked(lambda: _llm_call_trajectory(file, path.name, k, c, issues), file, c["line"], issues))
    return out, issues


def _llm_call_trajectory(file: str, name: str, k: int, c: dict[str, Any], issues: list[LoadIssue]) -> Trajectory | None:
    messages = []
    for m in c["messages"]:
        role = {"function": "tool"}.get(m["role"], m["role"])
        if role == "tool":
            issues.append(LoadIssue(file, "tool message in an Aider log (no call id); read as user", line=m["line"],
                                    severity="warning"))
            role = "user"
        messages.append(Message(role=role, content="\n".join(m["lines"]), metadata={"line": m["line"]}))
    reply = c["response"]
    content = "\n".join(reply["lines"])
    meta_reply: dict[str, Any] = {"line": reply["line"]}
    sent, received = _iso(c.get("sent_at")), _iso(c.get("received_at"))
    if sent and received:
        meta_reply["latency_s"] = (received - sent).total_seconds()
    messages.append(Message(role="assistant", content=content, metadata=meta_reply))
    system = "\n".join(m.content for m in messages if m.role == "system")
    fmt = None
    if "file listing" in system.lower() and "SEARCH/REPLACE" not in system:
        fmt = "whole"
    elif "unified diff" in system.lower() and "SEARCH/REPLACE" not in system:
        fmt = "udiff"
    meta: dict[str, Any] = {"format": "aider-llm-history", "line": c["line"], "sent_at": c.get("sent_at"),
                            "received_at": c.get("received_at"), "call_index": k}
    if fmt:
        meta["edit_format"] = fmt
    try:
        traj = Trajectory(id=f"{name}:{k}", source="aider", metadata=meta, messages=messages)
    except ValidationError as exc:
        issues.append(LoadIssue(file, f"model call rejected: {exc.errors()[0]['msg']}", line=c["line"]))
        return None
    return traj.model_copy(update={"actions": _actions(traj, fmt, only_message=len(messages) - 1)})
