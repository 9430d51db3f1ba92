"""`Guard`: judge a tool call before it runs, on the evidence and policy of `audit check`.

    >>> from auditor.guard import Guard
    >>> from auditor.testing import tiny_model, tiny_tokenizer      # Guard() loads the embedded model
    >>> guard = Guard((tiny_model("llama"), tiny_tokenizer()), hops=0)
    >>> messages = [{"role": "user", "content": "read the file notes"}]
    >>> call = {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "notes"}'}}
    >>> verdict = guard.check(messages, call)
    >>> verdict.allowed, verdict.score_kind, verdict.score, verdict.drivers[0].kind
    (True, 'probability', 0.0, 'user_request')

Each call renders the conversation with the reply that makes the call, audits only the reply's
tool calls (`Auditor.audit(..., actions=...)`: the rendering and every score are those of a whole
audit) and asks the check (`check_audit`) for its verdict on each: the guard blocks exactly what
`audit check` would flag. The capture comes from a `StateCacheStore`: a conversation that grows a
turn at a time is captured only from where it differs from the last turn seen (the KV cache of
the shared tokens), within ``state_budget_bytes`` (least recently used conversations evicted).

One model per process: guards built with the same model spec share its weights and one lock (a
capture switches the model's attention implementation and hooks its modules, so two may not
overlap); `check` is thread-safe and calls on one model run one at a time.

When no judgement can be made (the audit fails: a context too long for ``max_tokens``, tokens that
cannot be placed), the call is blocked with ``status = "error"`` and the reason, unless the guard
was built with ``fail_open=True``. Input the guard cannot read raises `GuardInputError`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from auditor.attribution import StateCacheStore
from auditor.audit.replay import Auditor
from auditor.check.policy import Policy, load_policy
from auditor.check.runner import check_audit
from auditor.guard.conversation import conversation, same_call_index, split_reply
from auditor.guard.verdict import Verdict, failed, from_check, ignored

#: Default state-cache budget: about 16k tokens of the embedded model in float32 (33k in 16-bit).
DEFAULT_STATE_BUDGET = 4 * 1024**3

_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str, str], tuple[Any, Any]] = {}  # (spec, dtype, device) -> (model, tokenizer)
_MODEL_LOCKS: dict[int, tuple[Any, threading.RLock]] = {}  # id(model) -> (model, its lock)


def shared_model(model: Any = None, dtype: str = "float32", device: str | None = None) -> tuple[tuple[Any, Any], threading.RLock, str]:
    """((model, tokenizer), the model's lock, its name): loaded once per process and spec."""
    from auditor.model_registry import EMBEDDED_NAME, load_model

    if isinstance(model, tuple):
        pair, name = model, str(getattr(model[0].config, "_name_or_path", "") or model[0].config.model_type)
    else:
        embedded = model is None or str(model) in {EMBEDDED_NAME, "default", "embedded"}
        name = EMBEDDED_NAME if embedded else os.fspath(model)
        key = (EMBEDDED_NAME if embedded else str(Path(name).resolve()), dtype, device or "")
        with _LOCK:
            if key not in _LOADED:
                _LOADED[key] = load_model(None if embedded else model, dtype=dtype, device=device)
            pair = _LOADED[key]
    with _LOCK:
        held = _MODEL_LOCKS.setdefault(id(pair[0]), (pair[0], threading.RLock()))
    return pair, held[1], name


def _audit_settings(policy: Policy) -> dict[str, Any]:
    """What the check needs from an audit to judge it under ``policy`` (causal deltas when it
    decides by the calibrated verdict), as `audit check` asks for it; nothing extra before the
    calibrated verdict exists."""
    try:
        from auditor.check.runner import audit_settings  # type: ignore[attr-defined]
    except ImportError:
        return {}
    return dict(audit_settings(policy))


def _policy(policy: Policy | str | os.PathLike[str] | None) -> Policy:
    if isinstance(policy, Policy):
        return policy
    return load_policy(None if policy is None else os.fspath(policy))


class Guard:
    """Judges tool calls before they run; see the module docstring.

    model: None (the embedded SmolLM2), a local model directory, or a ``(model, tokenizer)`` pair.
    policy: a `Policy`, a policy file, or None (the shipped default, as `audit check`).
    chat_template: the template the agent's model is served with (its text or a ``.jinja`` path),
        so the guard reads the conversation as the model did.
    method, hops, max_tokens, dtype, device, **method_options: the replay settings (`Auditor`).
    state_budget_bytes: memory for captured conversation states (0: no state cache, every call
        captures the whole conversation); state_dtype: their storage ("bfloat16"/"float16" hold
        twice the tokens; `docs/benchmarks/guard.md` measures what it changes).
    fail_open: allow a call the guard could not judge (default: block it, status "error").
    """

    def __init__(
        self,
        model: Any = None,
        policy: Policy | str | os.PathLike[str] | None = None,
        *,
        chat_template: str | os.PathLike[str] | None = None,
        method: str = "flashtrace",
        hops: int = 1,
        max_tokens: int | None = None,
        dtype: str = "float32",
        device: str | None = None,
        state_budget_bytes: int = DEFAULT_STATE_BUDGET,
        state_dtype: str = "float32",
        fail_open: bool = False,
        **method_options: Any,
    ) -> None:
        self.policy = _policy(policy)
        pair, self._lock, name = shared_model(model, dtype, device)
        self.states = (StateCacheStore(state_budget_bytes, dtype=state_dtype, max_new_ratio=1.0)
                       if state_budget_bytes else None)
        options = {**_audit_settings(self.policy), **method_options}
        self.auditor = Auditor(pair, method=method, hops=hops, max_tokens=max_tokens, model_name=name,
                               chat_template=chat_template, states=self.states, **options)
        self.fail_open = bool(fail_open)

    @property
    def model_name(self) -> str:
        return self.auditor.model_name

    # -- judging ---------------------------------------------------------------------------------------------
    def check(self, messages: Sequence[Any], tool_call: Any, tools: Sequence[Any] | None = None) -> Verdict:
        """The verdict on one tool call. ``messages``: the conversation the model saw (OpenAI chat
        or GenAI messages, or `Message` objects), optionally ending with the assistant reply that
        makes the call (and results of that reply's earlier calls); ``tool_call``: a chat
        ``{"id", "type", "function": {"name", "arguments"}}``, a flat ``{"name", "arguments"}``
        or a `ToolCall`; ``tools``: the tool definitions offered (OpenAI format)."""
        history, reply = split_reply(messages, tool_call)
        verdicts = self.check_reply(history, reply, tools)
        return verdicts[same_call_index(reply, tool_call)]

    def check_reply(self, messages: Sequence[Any], reply: Any, tools: Sequence[Any] | None = None) -> list[Verdict]:
        """One verdict per tool call of ``reply`` (an assistant message), in call order, from one
        audit of ``messages + [reply]``."""
        start = time.perf_counter()
        traj, judged = conversation(messages, reply, tools)
        out: dict[str, Verdict] = {a.id: ignored(a) for a in judged if self.policy.ignores(a)}
        checked = [a for a in judged if a.id not in out]
        tokens = new_tokens = 0
        if checked:
            with self._lock:
                before = self._forwarded()
                try:
                    self.auditor.arguments = self._decisive(checked)
                    audit = self.auditor.audit(traj, actions=[a.id for a in checked])
                except Exception as exc:  # noqa: BLE001 - no judgement: said in the verdict, blocked by default
                    out.update({a.id: failed(a, f"{type(exc).__name__}: {exc}", self.fail_open) for a in checked})
                else:
                    tokens, new_tokens = len(audit.tokens), self._forwarded() - before
                    if self.states is None:
                        new_tokens = tokens
                    out.update(self._judge(audit, checked))
        seconds = time.perf_counter() - start
        verdicts = [out[a.id] for a in judged]
        for v in verdicts:
            v.seconds, v.tokens, v.new_tokens = seconds, tokens, new_tokens
        return verdicts

    def _decisive(self, checked: list[Any]) -> list[str]:
        """The arguments the check judges these calls by (only they are explained: the verdict
        rests on the least supported decisive argument, else on the whole call)."""
        if self.policy.judge != "arguments":
            return []
        names: set[str] = set()
        for a in checked:
            names.update(self.policy.decisive_for(a.tool_name, list(a.arguments)))
        return sorted(names)

    def _judge(self, audit: Any, checked: list[Any]) -> dict[str, Verdict]:
        result = check_audit(audit, self.policy)
        verdicts = {v.action_id: v for v in result.verdicts}
        findings = {f.action_id: f for f in result.findings}
        attrs = {a.action.id: a for a in audit.actions}
        out = {}
        for action in checked:
            attr, v = attrs.get(action.id), verdicts.get(action.id)
            if attr is None or v is None:
                why = "; ".join(audit.unplaced + audit.dropped) or "the audit did not explain it"
                out[action.id] = failed(action, f"not explained: {why}", self.fail_open)
            else:
                out[action.id] = from_check(v, findings.get(action.id), attr, audit)
        return out

    def _forwarded(self) -> int:
        s = self.states.stats if self.states is not None else None
        return 0 if s is None else s.extended_tokens + s.captured_tokens


__all__ = ["Guard", "shared_model", "DEFAULT_STATE_BUDGET"]
