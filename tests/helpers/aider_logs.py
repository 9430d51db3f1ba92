"""Write Aider's two records of a session the way Aider writes them (aider/io.py, aider/utils.py):
``--llm-history-file`` (``TO LLM <time>`` + every message line prefixed by its role, ``-------``
before each message; ``LLM RESPONSE <time>`` + the reply's lines prefixed ``ASSISTANT``) and
``.aider.chat.history.md`` (``# aider chat started at``, ``#### `` user lines, ``> `` Aider's
output, the reply stripped)."""

from __future__ import annotations

from typing import Any


def format_content(role: str, content: str) -> str:
    return "\n".join(f"{role} {line}" for line in content.splitlines())


def format_messages(messages: list[dict[str, Any]]) -> str:
    out = []
    for m in messages:
        out.append("-------")
        out.append(format_content(m["role"].upper(), m["content"]))
    return "\n".join(out)


def llm_call(messages: list[dict[str, Any]], reply: str | None, sent: str, received: str | None = None) -> str:
    """One call as the log holds it; ``reply=None``: interrupted before any response."""
    text = f"TO LLM {sent}\n{format_messages(messages)}\n"
    if reply is not None:
        text += f"LLM RESPONSE {received or sent}\n{format_content('ASSISTANT', reply)}\n"
    return text


def chat_session(started: str, turns: list[tuple[str, str | None]], banner: str = "diff") -> str:
    """A launch in the chat history: (user input, reply or None when interrupted) per turn."""
    text = f"\n# aider chat started at {started}\n\n> Aider v0.86.1  \n> Model: openai/smollm2 with {banner} edit format  \n"
    for user, reply in turns:
        text += "\n" + "  \n".join(f"#### {line}" for line in user.splitlines()) + "  \n"
        if reply is None:
            text += "\n> ^C KeyboardInterrupt  \n"
            continue
        text += "\n" + reply.strip() + "\n\n"
        text += "> Tokens: 1.2k sent, 40 received.  \n"
    return text
