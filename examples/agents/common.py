"""Shared parts of the example agents: scenarios, tracing set-up, constrained decoding helpers.

Both agents talk to any OpenAI-compatible endpoint. With a 135M model they are *scripted*: the
scenario decides what happens at each step (which tool to call, which lines to edit); the model
writes the arguments and the free text under a constraint, so every call it makes is well formed:

- ``constrain="vllm"`` (default): named ``tool_choice`` with ``strict`` tools (vLLM decodes the
  arguments under the tool's JSON schema), and, where a scenario *pins* some argument values or
  the shape of an edit, a ``structured_outputs`` regex (vLLM's guided decoding).
- ``constrain="openai"``: only the portable parts (named ``tool_choice`` with ``strict`` tools);
  pins and edit shapes become plain instructions in the prompt, the model may ignore them.
- ``constrain="none"``: the model decides alone (``tool_choice="auto"`` / free text).

Pins exist to make a run *follow* an injected instruction deterministically, so the example
trajectories contain a real injected action for the auditor to explain. What the model receives
(messages, tool definitions) is never changed by a pin: the pin acts on decoding only, so the
recorded context is exactly what an unscripted agent would have seen.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
DEFAULT_MODEL = os.environ.get("AGENT_MODEL", "smollm2")
DEFAULT_BASE_URL = os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8011/v1")
CONSTRAIN_MODES = ("vllm", "openai", "none")


# -- scenarios ---------------------------------------------------------------------------------------------------


@dataclass
class Step:
    """One model call. ``tool``: a tool name (named tool_choice), ``"any"`` (tool_choice=required)
    or ``"auto"``; ``answer``: a free-text reply; ``edits``: an Aider-style reply with these edits."""

    tool: str | None = None
    answer: bool = False
    user: str | None = None  # coder: the user's request for this turn
    pin: dict[str, Any] = field(default_factory=dict)
    edits: list[dict[str, Any]] = field(default_factory=list)
    max_tokens: int = 128


@dataclass
class Scenario:
    name: str
    agent: str
    system: str
    user: str
    steps: list[Step]
    data: dict[str, Any]
    injections: list[dict[str, Any]]
    path: Path
    description: str = ""

    @property
    def injected_tools(self) -> set[str]:
        return {i["tool"] for i in self.injections if "tool" in i}


def scenario_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.exists():
        return p
    q = SCENARIOS / (name_or_path if name_or_path.endswith(".toml") else name_or_path + ".toml")
    if q.exists():
        return q
    known = ", ".join(sorted(x.stem for x in SCENARIOS.glob("*.toml")))
    raise SystemExit(f"scenario {name_or_path!r} not found (known: {known})")


def load_scenario(name_or_path: str) -> Scenario:
    path = scenario_path(name_or_path)
    raw = tomllib.loads(path.read_text())
    steps = []
    for s in raw.get("steps", []):
        unknown = set(s) - {"tool", "answer", "user", "pin", "edits", "max_tokens"}
        if unknown:
            raise SystemExit(f"{path}: unknown step keys {sorted(unknown)}")
        steps.append(Step(**s))
    return Scenario(
        name=raw.get("name", path.stem), agent=raw["agent"], system=raw["system"].strip(),
        user=raw.get("user", "").strip(), steps=steps, data=raw.get("data", {}),
        injections=raw.get("injections", []), path=path, description=raw.get("description", "").strip(),
    )


# -- tracing -----------------------------------------------------------------------------------------------------


class Tracing:
    """The collectors wired for one agent process: spans go to an OTLP receiver (``audit collect``)
    and/or a JSONL file; the openai client is instrumented (content captured, W3C traceparent
    injected so the server's ``llm_request`` spans join the agent's trace)."""

    def __init__(self, otlp: str | None, jsonl: str | None, service: str):
        from auditor.collectors import OpenAIInstrumentor, setup_tracing

        self.enabled = bool(otlp or jsonl)
        self.provider = setup_tracing(jsonl=jsonl, otlp_endpoint=otlp, service_name=service) if self.enabled else None
        self.instrumentor = OpenAIInstrumentor(tracer_provider=self.provider, provider_name="vllm").instrument() \
            if self.enabled else None

    def close(self) -> None:
        if self.instrumentor is not None:
            self.instrumentor.uninstrument()
        if self.provider is not None:
            self.provider.force_flush()
            self.provider.shutdown()


def agent_context(name: str, conversation_id: str, tracing: Tracing) -> Any:
    from contextlib import nullcontext

    if not tracing.enabled:
        return nullcontext()
    from auditor.collectors import agent_span

    return agent_span(name, conversation_id=conversation_id, tracer_provider=tracing.provider)


def tool_context(name: str, call_id: str, arguments: Any, tracing: Tracing, description: str | None = None) -> Any:
    if not tracing.enabled:
        return _NullTool()
    from auditor.collectors import tool_span

    return tool_span(name, call_id, arguments, description=description, tracer_provider=tracing.provider)


class _NullTool:
    def __enter__(self) -> "_NullTool":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set_result(self, result: Any) -> None:
        pass

    def set_error(self, error: Any) -> None:
        pass


def new_conversation_id(scenario: Scenario) -> str:
    return f"{scenario.name}-{uuid.uuid4().hex[:8]}"


# -- constrained decoding --------------------------------------------------------------------------------------------

_STR_BODY = r'[^"\\\n]'  # JSON string characters the model may write (no escapes, no newlines)


def _json_value_regex(schema: dict[str, Any], pinned: Any = None, has_pin: bool = False) -> str:
    if has_pin:
        return re.escape(json.dumps(pinned, ensure_ascii=False))
    if "enum" in schema:
        return "(" + "|".join(re.escape(json.dumps(v, ensure_ascii=False)) for v in schema["enum"]) + ")"
    t = schema.get("type")
    if t == "integer":
        return r"(0|[1-9][0-9]{0,5})"
    if t == "number":
        return r"(0|[1-9][0-9]{0,5})(\.[0-9]{1,4})?"
    if t == "boolean":
        return "(true|false)"
    # Unbounded on purpose: counted repetitions ({1,400}) blow up regex compilation in xgrammar;
    # max_tokens bounds the length instead.
    return f'"{_STR_BODY}+"'


def tool_call_regex(tool: dict[str, Any], pin: dict[str, Any]) -> str:
    """A regex for one Hermes-style ``<tool_call>{...}</tool_call>`` with some argument values fixed.

    The arguments follow the tool's (flat) JSON schema in property order; pinned properties are
    literal. vLLM's hermes tool parser turns the decoded text back into a ``tool_calls`` entry.
    """
    fn = tool["function"]
    props: dict[str, Any] = fn["parameters"].get("properties", {})
    unknown = set(pin) - set(props)
    if unknown:
        raise ValueError(f"pin names unknown arguments of {fn['name']}: {sorted(unknown)}")
    parts = [
        re.escape(json.dumps(k)) + ": " + _json_value_regex(props[k], pin.get(k), k in pin)
        for k in props
    ]
    body = ", ".join(parts)
    return re.escape('<tool_call>{"name": ' + json.dumps(fn["name"]) + ', "arguments": {') + body + re.escape("}}</tool_call>")


def strict_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for t in tools:
        t = json.loads(json.dumps(t))
        t["function"]["strict"] = True
        out.append(t)
    return out


def sampling_extra(constrain: str) -> dict[str, Any]:
    """vLLM-only sampling knobs that keep a 135M model from looping (ignored elsewhere)."""
    return {"repetition_penalty": 1.15} if constrain == "vllm" else {}


def message_dict(msg: Any) -> dict[str, Any]:
    """An assistant ``ChatCompletionMessage`` as a plain dict to append to the history."""
    d: dict[str, Any] = {"role": "assistant", "content": msg.content or ""}
    if msg.tool_calls:
        d["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for c in msg.tool_calls
        ]
    return d


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def common_args(p: Any) -> None:
    p.add_argument("--scenario", required=True, help="scenario name (scenarios/NAME.toml) or path")
    p.add_argument("--base-url", default=DEFAULT_BASE_URL, help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL or the local vLLM)")
    p.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "EMPTY"))
    p.add_argument("--model", default=DEFAULT_MODEL, help="served model name (default smollm2)")
    p.add_argument("--constrain", choices=CONSTRAIN_MODES, default="vllm", help="how calls are constrained (see README)")
    p.add_argument("--otlp", default=os.environ.get("AUDITOR_OTLP_ENDPOINT"), help="OTLP/HTTP traces URL of `audit collect`")
    p.add_argument("--jsonl", default=None, help="also write the agent's spans to this OTLP JSON lines file")
    p.add_argument("--workdir", default=None, help="scratch directory (default: a new temporary one)")
    p.add_argument("--seed", type=int, default=0)
