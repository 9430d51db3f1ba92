"""What every capture span shares, whichever library it wraps: the instrumentation scope, the
content-capture switch, the conversation id of the run in progress, the active instrumentor (whose
tracer provider and capture setting tool and agent spans follow), and the JSON form of captured values.
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
from typing import Any, Protocol

from opentelemetry import trace

SCOPE_NAME = "auditor.collectors.instrument"  # the scope every capture span is recorded under
SCOPE_VERSION = "0.1.0"
CAPTURE_ENV = "AUDITOR_CAPTURE_CONTENT"

CONVERSATION: contextvars.ContextVar[str | None] = contextvars.ContextVar("auditor_conversation_id", default=None)
LOCK = threading.Lock()  # held while an instrumentor becomes (or stops being) the active one


class ActiveInstrumentor(Protocol):
    @property
    def tracer(self) -> trace.Tracer: ...

    @property
    def capture_content(self) -> bool: ...


_ACTIVE: ActiveInstrumentor | None = None


def active_instrumentor() -> ActiveInstrumentor | None:
    """The instrumentor now wrapping the client, if any (at most one at a time)."""
    return _ACTIVE


def set_active_instrumentor(instrumentor: ActiveInstrumentor | None) -> None:
    """Call with `LOCK` held."""
    global _ACTIVE
    _ACTIVE = instrumentor


def env_capture_off() -> bool:
    return os.environ.get(CAPTURE_ENV, "").strip().lower() in ("0", "false", "no", "off")


def to_json(value: Any) -> str:
    """A captured value as attribute text (what JSON cannot hold, as its ``str``)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def as_plain(obj: Any) -> Any:
    """pydantic objects (e.g. a ChatCompletionMessage appended back to the history) -> dicts."""
    if hasattr(obj, "model_dump"):
        try:  # no serializer warnings in the agent's log (parsed generic models make them)
            return obj.model_dump(exclude_none=True, warnings=False)
        except TypeError:  # a model_dump without that keyword
            return obj.model_dump(exclude_none=True)
    return obj
