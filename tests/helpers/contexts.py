"""A two-request Aider-style session in which a file changes between the requests: the trajectory
with one context per model call that the contexts tests (replay, store, report) share.

Request 1 is sent ``app/util.py`` as it was (``return a - b``) and its reply fixes the sign;
request 2 is sent the history, then the file as it is after that edit (``return a + b``), and its
reply adds a function. The trajectory's own ``messages`` are request 2's conversation (what a
collector rebuilding from the last call would keep).
"""

from __future__ import annotations

from auditor.trajectory import Context, Message, Trajectory

PATH = "app/util.py"
OLD = "def add(a, b):\n    return a - b\n"
NEW = "def add(a, b):\n    return a + b\n"
SYSTEM = "You are a helpful agent. Edit the code with search and replace blocks."
REQUEST_1 = "Fix the add function in app/util.py."
REQUEST_2 = "Now add a mul function to app/util.py."
REPLY_1 = ("Fix the sign.\n\napp/util.py\n```python\n<<<<<<< SEARCH\n    return a - b\n=======\n"
           "    return a + b\n>>>>>>> REPLACE\n```")
REPLY_2 = ("Add mul.\n\napp/util.py\n```python\n<<<<<<< SEARCH\n    return a + b\n=======\n"
           "    return a + b\n\n\ndef mul(a, b):\n    return a * b\n>>>>>>> REPLACE\n```")
FILES_ACK = "Ok, any changes I propose will be to those files."


def files_message(text: str, path: str = PATH) -> str:
    """The files as Aider pastes them into a user message."""
    return ("I have *added these files to the chat* so you can go ahead and edit them.\n\n"
            f"{path}\n```python\n{text}```\n")


def request_messages(k: int) -> list[Message]:
    """The prompt of request ``k`` (1 or 2) followed by its reply."""
    if k == 1:
        return [Message(role="system", content=SYSTEM), Message(role="user", content=files_message(OLD)),
                Message(role="assistant", content=FILES_ACK), Message(role="user", content=REQUEST_1),
                Message(role="assistant", content=REPLY_1)]
    return [Message(role="system", content=SYSTEM), Message(role="user", content=REQUEST_1),
            Message(role="assistant", content=REPLY_1), Message(role="user", content=files_message(NEW)),
            Message(role="assistant", content=FILES_ACK), Message(role="user", content=REQUEST_2),
            Message(role="assistant", content=REPLY_2)]


def coding_session(tid: str = "session") -> Trajectory:
    """The session with its two contexts (``req1``, ``req2``); actions are derived from their replies."""
    return Trajectory(id=tid, source="aider", metadata={"edit_format": "diff"}, messages=request_messages(2),
                      contexts=[Context(id="req1", messages=request_messages(1)),
                                Context(id="req2", messages=request_messages(2))])


def flattened_session(tid: str = "session") -> Trajectory:
    """The same session the way it was rebuilt before contexts: request 2's conversation only, with
    the first reply's edit taken from the history it re-sends."""
    return Trajectory(id=tid, source="aider", metadata={"edit_format": "diff"}, messages=request_messages(2))
