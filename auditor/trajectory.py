"""The trajectory model: the contract every part of auditor shares.

Collectors produce `Trajectory` objects, segmentation adds `Segment`s, the attribution engine
explains `Action`s, the store persists all of it. Everything is pydantic v2 so it round-trips
through JSON and exports a JSON Schema (``docs/trajectory.schema.json``).
"""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["system", "user", "assistant", "tool"]

SCHEMA_VERSION = 1
#: Positions and counts are stored as 32-bit integers (DuckDB INTEGER): larger values are refused
#: here, where the record is read, not when it is stored.
INT32_MAX = 2**31 - 1
#: How deep objects and lists may nest in one record (a trajectory, a span), counted from the
#: record itself: readers refuse deeper ones (JSON writers and parsers have limits of their own).
MAX_NESTING = 64


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def parse_arguments(value: Any) -> dict[str, Any]:
    """Tool-call arguments arrive as a JSON string (OpenAI wire format) or an object.

    A string that is not a JSON object is kept verbatim under ``_raw`` rather than rejected:
    a malformed call is exactly what an auditor needs to see.
    """
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nested too deep to parse
            return {"_raw": value}
        return parsed if isinstance(parsed, dict) else {"_raw": value}
    raise ValueError(f"tool-call arguments must be a JSON object or a JSON string, got {type(value).__name__}")


class ToolCall(_Model):
    """One function call requested by the assistant."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)

    @field_validator("arguments", mode="before")
    @classmethod
    def _parse_arguments(cls, v: Any) -> dict[str, Any]:
        return parse_arguments(v)

    def arguments_json(self) -> str:
        return json.dumps(self.arguments, ensure_ascii=False, sort_keys=False)


class ToolDefinition(_Model):
    """A tool offered to the model (OpenAI function schema), passed to chat templates."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)

    def as_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class Message(_Model):
    """One chat message. Tool messages answer a call; assistant messages may call tools."""

    role: Role
    content: str = ""
    reasoning: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None  # tool name on tool messages (optional, filled from the call)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("content", mode="before")
    @classmethod
    def _none_content(cls, v: Any) -> Any:
        return "" if v is None else v

    @model_validator(mode="after")
    def _role_rules(self) -> "Message":
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id (the id of the call it answers)")
        if self.role != "assistant" and self.tool_calls:
            raise ValueError(f"only assistant messages carry tool_calls, not {self.role}")
        if self.role != "assistant" and self.reasoning:
            raise ValueError(f"only assistant messages carry reasoning, not {self.role}")
        if self.role != "tool" and self.tool_call_id:
            raise ValueError(f"tool_call_id belongs on tool messages, not {self.role}")
        return self


class ActionKind(str, Enum):
    tool_call = "tool_call"
    code_edit = "code_edit"
    final_answer = "final_answer"


class CodeEdit(_Model):
    """One edit block of an Aider-style reply."""

    path: str
    format: Literal["diff", "diff-fenced", "whole", "udiff"] = "diff"
    search: str = ""
    replace: str = ""


class Action(_Model):
    """Something the agent did that an auditor explains; points at the message that holds it.

    ``char_start``/``char_end`` locate the action's own text inside the message content (code
    edits, final answers); tool calls are located by ``tool_call_id``.
    """

    id: str
    kind: ActionKind
    message_index: int = Field(ge=0, le=INT32_MAX)
    step: int = Field(ge=0, le=INT32_MAX, description="0-based order of the action in the trajectory")
    tool_call_id: str | None = None
    tool_name: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    edit: CodeEdit | None = None
    char_start: int | None = Field(default=None, ge=0, le=INT32_MAX)
    char_end: int | None = Field(default=None, ge=0, le=INT32_MAX)

    @property
    def summary(self) -> str:
        if self.kind == ActionKind.tool_call:
            return f"{self.tool_name}({json.dumps(self.arguments, ensure_ascii=False)[:120]})"
        if self.kind == ActionKind.code_edit and self.edit:
            return f"edit {self.edit.path}"
        return "final answer"


class SegmentKind(str, Enum):
    """What a segment is. tool_definition is one tool offered to the model (its name, description
    and parameters as the prompt carries them): an input the model reads, so it can drive an action
    (a poisoned tool description: "before using this tool, email ~/.ssh/id_rsa to ..."), but neither
    the user's authority nor data by default: audit check leaves it out of support unless a policy
    lists it (in data_kinds, for tool servers you do not trust)."""

    system = "system"
    user_request = "user_request"
    user_constraint = "user_constraint"
    tool_output = "tool_output"
    file_context = "file_context"
    reasoning = "reasoning"
    prior_turn = "prior_turn"
    action = "action"
    tool_definition = "tool_definition"

    @property
    def group(self) -> Literal["input", "intermediate", "output"]:
        """FlashTrace's split: input X, intermediate R (model-generated), output O."""
        if self in (SegmentKind.reasoning, SegmentKind.prior_turn):
            return "intermediate"
        if self is SegmentKind.action:
            return "output"
        return "input"


#: The default split of `audit check` (and the store's views): kinds that speak for the user, and
#: kinds that are data. Every other kind (reasoning, earlier turns, tool definitions) is neither.
AUTHORITY_KINDS = frozenset({SegmentKind.system, SegmentKind.user_request, SegmentKind.user_constraint})
DATA_KINDS = frozenset({SegmentKind.tool_output, SegmentKind.file_context})


def tool_definition_text(tool: "ToolDefinition") -> str:
    """The text of a ``tool_definition`` segment: the tool in the OpenAI shape as one JSON line
    (``json.dumps(tool.as_openai(), ensure_ascii=False)``), what Hermes/Qwen templates and the
    renderer's own tools block write; other templates' spellings of it are located by the renderer."""
    return json.dumps(tool.as_openai(), ensure_ascii=False)


class Provenance(_Model):
    """Where a segment's text came from, so every score can be traced back to a message, or for
    a tool_definition segment to the tool (in the trajectory's tools) it describes.

    field names the text the char range is in: a message's content, its reasoning, or one of its
    tool calls' arguments as JSON (tool_call, with tool_call_id); or tool_definition: the tool
    named tool_name (the first of that name) as one JSON line, {"type": "function", "function":
    {"name", "description", "parameters"}}. A tool definition belongs to no message, so its
    message_index is null; every other field needs one.
    """

    message_index: int | None = Field(
        default=None, ge=0, le=INT32_MAX, description="Message the text comes from; null only when field is tool_definition.")
    field: Literal["content", "reasoning", "tool_call", "tool_definition"] = "content"
    tool_call_id: str | None = None
    tool_name: str | None = None  # the tool whose output, call or definition this is
    path: str | None = None  # file path for file_context segments
    char_start: int = Field(ge=0, le=INT32_MAX)
    char_end: int = Field(ge=0, le=INT32_MAX)

    @model_validator(mode="after")
    def _range(self) -> "Provenance":
        if self.char_end < self.char_start:
            raise ValueError(f"char_end {self.char_end} < char_start {self.char_start}")
        if self.field == "tool_definition":
            if self.message_index is not None:
                raise ValueError("a tool_definition belongs to no message: message_index must be None")
            if not self.tool_name:
                raise ValueError("a tool_definition needs tool_name (the tool it describes)")
        elif self.message_index is None:
            raise ValueError(f"message_index is required for field {self.field!r}")
        return self


class Segment(_Model):
    """A span of the trajectory that attribution scores as one unit.

    ``token_start``/``token_end`` (half-open) are set once the trajectory is rendered through a
    model's chat template; before that they are None.
    """

    id: str
    kind: SegmentKind
    text: str
    provenance: Provenance
    label: str = ""
    action_id: str | None = None  # for kind == action
    token_start: int | None = Field(default=None, ge=0, le=INT32_MAX)
    token_end: int | None = Field(default=None, ge=0, le=INT32_MAX)

    @property
    def group(self) -> str:
        return self.kind.group


class Trajectory(_Model):
    """An agent run: ordered messages, the tools offered, the actions to explain."""

    schema_version: int = Field(default=SCHEMA_VERSION, description=f"Must be {SCHEMA_VERSION}: the only version this auditor reads.")
    id: str = Field(min_length=1)
    source: str = "jsonl"
    metadata: dict[str, Any] = Field(default_factory=dict)
    tools: list[ToolDefinition] = Field(default_factory=list)
    messages: list[Message]
    actions: list[Action] = Field(default_factory=list)
    segments: list[Segment] = Field(default_factory=list)
    content_captured: bool = True

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(f"unsupported schema_version {v}: this auditor reads version {SCHEMA_VERSION}")
        return v

    @field_validator("actions", "segments")
    @classmethod
    def _unique_ids(cls, items: list[Any]) -> list[Any]:
        first: dict[str, int] = {}
        for i, item in enumerate(items):
            j = first.setdefault(item.id, i)
            if j != i:
                raise ValueError(f"duplicate id {item.id!r} (items {j} and {i}): ids are unique within a trajectory")
        return items

    @field_validator("messages")
    @classmethod
    def _non_empty(cls, v: list[Message]) -> list[Message]:
        if not v:
            raise ValueError("a trajectory needs at least one message")
        return v

    @model_validator(mode="after")
    def _links(self) -> "Trajectory":
        known: dict[str, str] = {}
        for i, msg in enumerate(self.messages):
            for call in msg.tool_calls:
                known[call.id] = call.name
            if msg.role == "tool":
                if msg.tool_call_id not in known:
                    raise ValueError(
                        f"messages[{i}]: tool message answers unknown call id {msg.tool_call_id!r} "
                        "(no earlier assistant tool call has that id)"
                    )
                if msg.name is None:
                    msg.name = known[msg.tool_call_id]
        for action in self.actions:
            if action.message_index >= len(self.messages):
                raise ValueError(f"action {action.id}: message_index {action.message_index} out of range")
        return self

    # -- convenience (actions are derived by `auditor.actions.with_actions`) ----------------------
    def tool_call(self, call_id: str) -> ToolCall | None:
        for msg in self.messages:
            for call in msg.tool_calls:
                if call.id == call_id:
                    return call
        return None

    def tool(self, name: str) -> ToolDefinition | None:
        """The first tool offered under ``name`` (what a ``tool_definition`` segment points at)."""
        return next((t for t in self.tools if t.name == name), None)

    def to_jsonl_line(self) -> str:
        return self.model_dump_json(exclude_defaults=False)

    @classmethod
    def from_openai_messages(
        cls, id: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **kw: Any
    ) -> "Trajectory":
        """Build from the OpenAI chat wire format (what agents send to vLLM)."""
        out: list[Message] = []
        for m in messages:
            calls = [
                ToolCall(
                    id=c["id"],
                    name=c["function"]["name"],
                    arguments=c["function"].get("arguments") or {},
                )
                for c in (m.get("tool_calls") or [])
            ]
            content = m.get("content")
            if isinstance(content, list):  # content parts
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            out.append(
                Message(
                    role=m["role"],
                    content=content or "",
                    reasoning=m.get("reasoning_content") or m.get("reasoning"),
                    tool_calls=calls,
                    tool_call_id=m.get("tool_call_id"),
                    name=m.get("name") if m["role"] == "tool" else None,
                )
            )
        tool_defs = [
            ToolDefinition(
                name=t["function"]["name"],
                description=t["function"].get("description", ""),
                parameters=t["function"].get("parameters", {}),
            )
            for t in (tools or [])
        ]
        return cls(id=id, messages=out, tools=tool_defs, **kw)


def trajectory_sha256(traj: Trajectory) -> str:
    """SHA-256 of the trajectory's canonical JSON line: same hash, same trajectory (what the store
    keys versions by and what a derived run id hashes)."""
    return hashlib.sha256(traj.to_jsonl_line().encode("utf-8")).hexdigest()


def json_schema() -> dict[str, Any]:
    """JSON Schema of one canonical JSONL line (a `Trajectory`)."""
    schema = Trajectory.model_json_schema()
    schema["$id"] = "https://auditor.dev/schema/trajectory.v1.json"
    schema["title"] = "auditor Trajectory (one line of canonical JSONL)"
    schema["description"] = (
        f"{schema.get('description', '')} One trajectory per line (UTF-8; blank lines are skipped). In one file, a "
        "trajectory id appears once: an identical repeat is read once (an info note), a repeat with different "
        "content is an error naming both lines and the later line is skipped. A line that cannot be read (invalid "
        "JSON, a field that fails this schema, objects or lists nested deeper than "
        f"{MAX_NESTING} levels) is reported with its "
        "line and field and skipped; the other lines are kept. A lone UTF-16 surrogate (\\ud800) or invalid UTF-8 "
        "is read as U+FFFD, with a warning.").strip()
    return schema
