"""Render a trajectory through a model's chat template into one token sequence, and place every
segment on the exact tokens that carry its text.

How rendering works:

1. Messages go to ``tokenizer.apply_chat_template(..., tokenize=False)`` in the OpenAI shape the
   templates expect: assistant ``tool_calls`` as ``{"type": "function", "id", "function": {"name",
   "arguments": <dict>}}``, reasoning as ``reasoning_content``, the tool definitions as ``tools``.
2. The template's abilities are probed once per template (does it write tool definitions, tool
   calls, reasoning?). What a template cannot write is written into the message text instead, so
   the model still sees it: tool calls as ``<tool_call>{"name": …, "arguments": …}</tool_call>``
   after the content, reasoning as ``<think>…</think>`` before it, tool definitions as a
   ``<tools>`` block after the system prompt. ``RenderedTrajectory.notes`` says which.
3. A template that raises on the conversation (strict role alternation, no ``tool`` role, no
   system role) is retried with tool results as ``user`` messages wrapped in
   ``<tool_response>…</tool_response>`` and consecutive same-role messages joined.
4. The rendered string is tokenized once with offsets (``add_special_tokens=False``: templates
   write their own BOS).

Placing the segments on the rendered text and its tokens is `auditor.segments.placement`.

Context limit: ``max_tokens`` (default: the model's ``max_position_embeddings``, capped at
``DEFAULT_MAX_TOKENS``). A longer trajectory keeps every system message, the first user message
and the first user message holding a ``user_request``, and then the most recent turns that fit
(an assistant message travels with the tool results that answer it); the rest is dropped and
listed in ``dropped``, with the actions that can no longer be attributed. If the kept minimum plus
the last turn does not fit, `ContextTooLong` says so rather than truncating text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from auditor.actions import with_actions
from auditor.segments.placement import place_segments
from auditor.trajectory import Message, Segment, SegmentKind, Trajectory, tool_definition_text

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

DEFAULT_MAX_TOKENS = 8192
_PROBE = "zqxprobe"


class ContextTooLong(ValueError):
    """Even the protected messages and the last turn exceed the context limit."""


@dataclass(frozen=True)
class TemplateCaps:
    """What a chat template writes by itself."""

    tools: bool
    tool_calls: bool
    reasoning: bool
    tool_role: bool
    system_role: bool


@dataclass
class RenderedTrajectory:
    """A trajectory as one token sequence, with every placed segment's token range set."""

    trajectory: Trajectory
    text: str
    input_ids: list[int]
    offsets: list[tuple[int, int]]
    tokens: list[str]
    segments: list[Segment]  # placed segments (token_start/token_end set), in token order
    unplaced: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    dropped_actions: list[str] = field(default_factory=list)
    kept_messages: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    max_tokens: int = DEFAULT_MAX_TOKENS

    def __len__(self) -> int:
        return len(self.input_ids)

    def segment(self, segment_id: str) -> Segment:
        for s in self.segments:
            if s.id == segment_id:
                return s
        raise KeyError(segment_id)

    def action_segment(self, action_id: str) -> Segment | None:
        for s in self.segments:
            if s.kind is SegmentKind.action and s.action_id == action_id:
                return s
        return None

    def template_positions(self) -> list[int]:
        """Positions no segment covers: role markers, special tokens, the template's own text."""
        covered = [False] * len(self.input_ids)
        for s in self.segments:
            for p in range(s.token_start or 0, s.token_end or 0):
                covered[p] = True
        return [p for p, c in enumerate(covered) if not c]


# -- template probing ---------------------------------------------------------------------------


def _apply(tokenizer: Any, messages: list[dict], tools: list[dict] | None) -> str:
    kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": False}
    if tools:
        kwargs["tools"] = tools
    out = tokenizer.apply_chat_template(messages, **kwargs)
    if not isinstance(out, str):  # pragma: no cover - tokenize=False always returns text
        raise TypeError(f"apply_chat_template returned {type(out).__name__}, expected str")
    return out


def _try(tokenizer: Any, messages: list[dict], tools: list[dict] | None = None) -> str | None:
    try:
        return _apply(tokenizer, messages, tools)
    except Exception:  # noqa: BLE001 - templates raise anything (TemplateError, TypeError, ...)
        return None


_CAPS: dict[str, TemplateCaps] = {}


def _probe(tokenizer: Any) -> TemplateCaps:
    user = {"role": "user", "content": "hello"}
    tool_def = {"type": "function", "function": {"name": f"{_PROBE}tool", "description": "probe",
                                                  "parameters": {"type": "object", "properties": {}}}}
    out = _try(tokenizer, [user], [tool_def])
    tools = bool(out and f"{_PROBE}tool" in out)
    call = {"type": "function", "id": "probe_1",
            "function": {"name": f"{_PROBE}call", "arguments": {"x": f"{_PROBE}arg"}}}
    out = _try(tokenizer, [user, {"role": "assistant", "content": "", "tool_calls": [call]}])
    tool_calls = bool(out and f"{_PROBE}call" in out and f"{_PROBE}arg" in out)
    out = _try(tokenizer, [user, {"role": "assistant", "content": "ok", "reasoning_content": f"{_PROBE}think"}])
    reasoning = bool(out and f"{_PROBE}think" in out)
    result = {"role": "tool", "tool_call_id": "probe_1", "name": f"{_PROBE}call", "content": f"{_PROBE}result"}
    if tool_calls:
        out = _try(tokenizer, [user, {"role": "assistant", "content": "", "tool_calls": [call]}, result])
    else:
        out = _try(tokenizer, [user, {"role": "assistant", "content": "calling"}, result])
    tool_role = bool(out and f"{_PROBE}result" in out)
    out = _try(tokenizer, [{"role": "system", "content": f"{_PROBE}sys"}, user])
    system_role = bool(out and f"{_PROBE}sys" in out)
    return TemplateCaps(tools, tool_calls, reasoning, tool_role, system_role)


def template_caps(tokenizer: "PreTrainedTokenizerBase") -> TemplateCaps:
    """Probe (once per template text) what the tokenizer's chat template writes by itself."""
    template = tokenizer.chat_template
    if not template:
        raise ValueError("the tokenizer has no chat template: pass one (Auditor(chat_template=...)) or set tokenizer.chat_template")
    if not isinstance(template, str):  # named templates: use the default one
        template = template.get("default") or next(iter(template.values()))
    if template not in _CAPS:
        _CAPS[template] = _probe(tokenizer)
    return _CAPS[template]


# -- building the template's input -----------------------------------------------------------------


def _call_text(name: str, arguments: dict) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False) + "\n</tool_call>"


def _tools_text(traj: Trajectory) -> str:
    lines = "\n".join(tool_definition_text(t) for t in traj.tools)
    return ("# Tools\n\nYou may call one or more functions. Function signatures:\n<tools>\n" + lines +
            "\n</tools>\n\nReturn each call as <tool_call>{\"name\": ..., \"arguments\": ...}</tool_call>.")


def _chat(traj: Trajectory, kept: list[int], caps: TemplateCaps, textual: bool) -> tuple[list[dict], list[dict] | None, list[str]]:
    """The messages and tools to hand to the template, and notes on what was written as text."""
    notes: list[str] = []
    native_calls = caps.tool_calls and not textual
    native_reasoning = caps.reasoning and not textual
    tool_role = caps.tool_role and not textual
    out: list[dict] = []
    for i in kept:
        m: Message = traj.messages[i]
        d: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.role == "assistant":
            if m.tool_calls:
                if native_calls:
                    d["tool_calls"] = [
                        {"type": "function", "id": c.id, "function": {"name": c.name, "arguments": c.arguments}}
                        for c in m.tool_calls
                    ]
                else:
                    calls = "\n".join(_call_text(c.name, c.arguments) for c in m.tool_calls)
                    d["content"] = (d["content"] + "\n" if d["content"] else "") + calls
            if m.reasoning:
                if native_reasoning:
                    d["reasoning_content"] = m.reasoning
                else:
                    d["content"] = f"<think>\n{m.reasoning}\n</think>\n\n" + d["content"]
        elif m.role == "tool":
            if tool_role:
                d["tool_call_id"] = m.tool_call_id
                if m.name:
                    d["name"] = m.name
            else:
                d = {"role": "user", "content": f"<tool_response>\n{m.content}\n</tool_response>"}
        out.append(d)
    if any(traj.messages[i].reasoning for i in kept) and not native_reasoning:
        notes.append("reasoning written into the assistant text as <think>…</think> (the template has no reasoning field)")
    if any(traj.messages[i].tool_calls for i in kept) and not native_calls:
        notes.append("tool calls written into the assistant text as <tool_call>{…}</tool_call> (the template does not render tool_calls)")
    if any(traj.messages[i].role == "tool" for i in kept) and not tool_role:
        notes.append("tool results sent as user messages in <tool_response> tags (the template has no tool role)")
    tools: list[dict] | None = None
    if traj.tools:
        if caps.tools and not textual:
            tools = [t.as_openai() for t in traj.tools]
        else:
            block = _tools_text(traj)
            if out and out[0]["role"] == "system":
                out[0] = {**out[0], "content": out[0]["content"] + "\n\n" + block}
            else:
                out.insert(0, {"role": "system", "content": block})
            notes.append("tool definitions written after the system prompt (the template does not take tools)")
    if textual:
        merged: list[dict] = []
        for d in out:
            if merged and merged[-1]["role"] == d["role"]:
                merged[-1] = {**merged[-1], "content": merged[-1]["content"] + "\n\n" + d["content"]}
            else:
                merged.append(d)
        out = merged
    return out, tools, notes


def _render_text(tokenizer: Any, traj: Trajectory, kept: list[int]) -> tuple[str, list[str]]:
    caps = template_caps(tokenizer)
    messages, tools, notes = _chat(traj, kept, caps, textual=False)
    try:
        return _apply(tokenizer, messages, tools), notes
    except Exception as first:  # noqa: BLE001
        messages, tools, notes = _chat(traj, kept, caps, textual=True)
        try:
            text = _apply(tokenizer, messages, tools)
        except Exception:  # noqa: BLE001
            if messages and messages[0]["role"] == "system" and len(messages) > 1 and messages[1]["role"] == "user":
                sys_msg = messages.pop(0)
                messages[0] = {**messages[0], "content": sys_msg["content"] + "\n\n" + messages[0]["content"]}
                notes.append("system prompt joined to the first user message (the template rejects it)")
                try:
                    text = _apply(tokenizer, messages, tools)
                except Exception as exc:  # noqa: BLE001
                    raise ValueError(f"the chat template cannot render this trajectory: {first}; then {exc}") from exc
            else:
                raise ValueError(f"the chat template cannot render this trajectory: {first}") from first
        notes.insert(0, f"rendered in text mode: the template rejected the conversation as given ({first})")
        return text, notes


# -- the context limit ---------------------------------------------------------------------------------


def default_max_tokens(model: Any = None, tokenizer: Any = None) -> int:
    """The model's ``max_position_embeddings`` (or the tokenizer's limit), capped at 8192."""
    limit = None
    config = getattr(model, "config", None)
    if config is not None:
        text_config = getattr(config, "get_text_config", lambda: config)()
        limit = getattr(text_config, "max_position_embeddings", None) or getattr(text_config, "n_positions", None)
    if limit is None and tokenizer is not None:
        mml = getattr(tokenizer, "model_max_length", None)
        if isinstance(mml, int) and mml < 10**8:
            limit = mml
    return min(int(limit), DEFAULT_MAX_TOKENS) if limit else DEFAULT_MAX_TOKENS


def _units(traj: Trajectory) -> list[list[int]]:
    """Messages grouped into turns that are kept or dropped together."""
    units: list[list[int]] = []
    for i, m in enumerate(traj.messages):
        if m.role == "tool" and units and traj.messages[units[-1][0]].role == "assistant" and traj.messages[units[-1][0]].tool_calls:
            units[-1].append(i)
        else:
            units.append([i])
    return units


def _protected(traj: Trajectory, segments: list[Segment]) -> set[int]:
    keep = {i for i, m in enumerate(traj.messages) if m.role == "system"}
    users = [i for i, m in enumerate(traj.messages) if m.role == "user"]
    if users:
        keep.add(users[0])
    request = next((s.provenance.message_index for s in segments if s.kind is SegmentKind.user_request), None)
    if request is not None:
        keep.add(request)
    return keep


def _describe(traj: Trajectory, i: int) -> str:
    m = traj.messages[i]
    if m.role == "tool":
        return f"message {i} (tool {m.name}#{m.tool_call_id})"
    if m.role == "assistant" and m.tool_calls:
        return f"message {i} (assistant: " + ", ".join(f"{c.name}#{c.id}" for c in m.tool_calls) + ")"
    return f"message {i} ({m.role})"


# -- entry point -----------------------------------------------------------------------------------


def render_trajectory(
    traj: Trajectory,
    tokenizer: "PreTrainedTokenizerBase",
    segments: list[Segment] | None = None,
    *,
    max_tokens: int | None = None,
    model: Any = None,
) -> RenderedTrajectory:
    """Render ``traj`` through ``tokenizer``'s chat template and place ``segments`` on tokens.

    ``segments`` default to `segment_trajectory(traj)`. ``max_tokens`` defaults to
    `default_max_tokens(model, tokenizer)`; see the module docstring for the drop policy.
    """
    from auditor.segments.segment import segment_trajectory

    traj = with_actions(traj)
    if segments is None:
        segments = segment_trajectory(traj)
    limit = max_tokens or default_max_tokens(model, tokenizer)

    def encode(kept: list[int]) -> tuple[str, list[int], list[tuple[int, int]], list[str]]:
        text, notes = _render_text(tokenizer, traj, kept)
        enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        return text, list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]], notes

    kept = list(range(len(traj.messages)))
    text, ids, offsets, notes = encode(kept)
    dropped: list[str] = []
    dropped_msgs: list[int] = []
    if len(ids) > limit:
        protected = _protected(traj, segments)
        units = _units(traj)
        fixed = [u for u in units if any(i in protected for i in u)]
        free = [u for u in units if not any(i in protected for i in u)]
        # estimate each message's tokens from its own text, then verify by rendering
        sizes = {i: len(tokenizer(traj.messages[i].content + (traj.messages[i].reasoning or "") +
                                  "".join(c.arguments_json() + c.name for c in traj.messages[i].tool_calls),
                                  add_special_tokens=False)["input_ids"]) + 8
                 for i in range(len(traj.messages))}
        overhead = max(len(ids) - sum(sizes.values()), 0)
        budget = limit - overhead - sum(sizes[i] for u in fixed for i in u)
        keep_free: list[list[int]] = []
        for u in reversed(free):  # the most recent turns that fit
            cost = sum(sizes[i] for i in u)
            if cost > budget:
                break
            keep_free.insert(0, u)
            budget -= cost
        if free and not keep_free:
            raise ContextTooLong(
                f"trajectory {traj.id}: the most recent turn ({', '.join(_describe(traj, i) for i in free[-1])}) "
                f"does not fit in max_tokens={limit} next to the system prompt and user request; raise max_tokens"
            )
        while True:
            kept = sorted(i for u in fixed + keep_free for i in u)
            text, ids, offsets, notes = encode(kept)
            if len(ids) <= limit:
                break
            if len(keep_free) <= 1:
                raise ContextTooLong(
                    f"trajectory {traj.id}: {len(ids)} tokens with only the system prompt, the user request and "
                    f"the most recent turn; that exceeds max_tokens={limit}; raise max_tokens"
                )
            keep_free.pop(0)
        dropped_msgs = [i for i in range(len(traj.messages)) if i not in set(kept)]
        if dropped_msgs:
            dropped.append(
                f"{len(dropped_msgs)} of {len(traj.messages)} messages dropped to fit max_tokens={limit} "
                f"(kept the system prompt, the user request and the {len(keep_free)} most recent turns; "
                f"{len(ids)} tokens remain)"
            )
            dropped.extend(f"dropped {_describe(traj, i)}, about {sizes[i]} tokens" for i in dropped_msgs)
    kept_set = set(kept)
    dropped_actions = [a.id for a in traj.actions if a.message_index not in kept_set]
    for a in traj.actions:
        if a.message_index not in kept_set:
            dropped.append(f"action {a.id} ({a.summary}) not attributed: its message was dropped")
    # tool definitions are rendered whatever messages are kept
    live = [s for s in segments if s.provenance.message_index is None or s.provenance.message_index in kept_set]
    placed, unplaced = place_segments(traj, kept, live, text, offsets)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    return RenderedTrajectory(
        trajectory=traj, text=text, input_ids=ids, offsets=offsets, tokens=list(tokens), segments=placed,
        unplaced=unplaced, dropped=dropped, dropped_actions=dropped_actions, kept_messages=kept, notes=notes,
        max_tokens=limit,
    )


__all__ = ["render_trajectory", "RenderedTrajectory", "TemplateCaps", "template_caps", "default_max_tokens",
           "ContextTooLong", "DEFAULT_MAX_TOKENS"]
