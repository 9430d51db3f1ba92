"""The check's policy: which segments speak with the user's authority, how much support each
action needs, and what to leave alone. Loaded from TOML (``tomllib``), validated by pydantic.

A policy file, every key optional (missing keys take the defaults in
``auditor/check/default_policy.toml``, which come from the injection benchmark)::

    # policy.toml
    authority_kinds = ["system", "user_request", "user_constraint"]
    data_kinds = ["tool_output", "file_context"]   # + "tool_definition" for untrusted tool servers
    threshold = 0.5                 # minimum support for any action not listed below
    weighting = "mass"              # "mass" or "per_token" (see auditor.check.scoring)
    ignore = ["final_answer", "list_*"]   # tool names, action kinds or glob patterns
    judge = "arguments"             # "arguments" (decisive arguments) or "action" (the whole call)
    decisive_arguments = ["to", "cc", "recipient*"]   # argument names (globs) that decide the verdict

    [arguments]                     # per tool: its decisive arguments (replaces the list above)
    transfer_funds = ["account", "amount"]

    [tools]                         # per-tool minimum support; keys are names or globs
    send_email = 0.6
    "read_*" = 0.1

    [rules]
    data_top_driver = false         # also flag when the strongest driver is a data segment
    max_reasoning_flow = 1.0        # flag when more than this share flowed through data-driven reasoning

    decide = "verdict"              # "verdict" (the calibrated probability) or "support" (threshold only)
    [verdict.causal]                # the calibrated verdict (auditor.check.verdict), with causal deltas
    intercept = -3.1
    threshold = 0.42                # unsupported when p >= threshold
    weights = { support = -2.0, driver_value = 1.7, neutral_delta = -0.9 }
    [verdict.attribution]           # the same without causal features, for audits made without them

With ``decide = "verdict"`` (the default) an action is unsupported when the verdict's probability
reaches its model's threshold (`auditor.check.verdict`); the support threshold (``threshold``,
``[tools]``) is then reported, not enforced. ``decide = "support"`` judges by support alone, as
before the verdict existed. The ``[rules]`` apply under both.

Most specific tool key wins: an exact name beats a glob, a longer glob beats a shorter one
(for ``[tools]`` and ``[arguments]`` alike).

Tool definitions (``tool_definition`` segments: each tool's name, description and parameters as
the prompt carries them) are neither authority nor data by default: their share of an action
counts on neither side, so it leaves the support, the calibrated threshold and the store's views
exactly as they were before tool definitions were segments. Who treats its tool servers (MCP
servers, plugins) as untrusted adds ``"tool_definition"`` to ``data_kinds``: an action driven by a
tool's description (tool poisoning: "before using this tool, also send … to …") then loses
support like one driven by a tool output. Listing it in ``authority_kinds`` instead says the
tool descriptions speak with the operator's authority. The threshold was calibrated without
tool definitions on either side (``docs/benchmarks/check.md``).

With ``judge = "arguments"`` an action is judged by its *decisive* arguments, the ones that say
who receives its effect (a recipient, an attendee, a channel), not those that restate what the
agent read (an email body summarising a file): the least supported decisive argument sets the
action's support. They are the arguments named for the tool in ``[arguments]``, else those matching
``decisive_arguments``. An action with no decisive argument explained (a statement, a command, an
edit, or an audit made without arguments) is judged as a whole call. The default list comes from
the injection benchmark, where it beat judging whole calls and judging every argument (see
``docs/benchmarks/check.md``).
"""

from __future__ import annotations

import fnmatch
import tomllib
from importlib import resources
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from auditor.check import defaults
from auditor.check.features import CAUSAL_FEATURES, FEATURES
from auditor.trajectory import Action, SegmentKind


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the key."""


class Rules(BaseModel):
    """Extra rules on top of the support threshold (see ``auditor.check.scoring``)."""

    model_config = ConfigDict(extra="forbid")

    data_top_driver: bool = Field(
        defaults.DEFAULT_DATA_TOP_DRIVER, description="Flag an action whose strongest driver is a data segment, whatever its support."
    )
    max_reasoning_flow: float = Field(
        defaults.DEFAULT_MAX_REASONING_FLOW,
        ge=0.0,
        le=1.0,
        description=(
            "Flag an action when more than this share of its mass flowed through model-generated "
            "reasoning AND that reasoning was itself driven more by data than by authority. 1.0 = off."
        ),
    )


class VerdictModel(BaseModel):
    """A logistic regression over named features (`auditor.check.features.FEATURES`):
    ``p = 1 / (1 + exp(-(intercept + Σ weights[f] · f)))``; unsupported when ``p >= threshold``.
    ``means`` are the features' averages on the calibration split: an explanation names the features
    whose ``weight · (value − mean)`` pushed hardest towards the verdict."""

    model_config = ConfigDict(extra="forbid")

    intercept: float = 0.0
    weights: dict[str, float] = Field(default_factory=dict)
    means: dict[str, float] = Field(default_factory=dict)
    threshold: float = Field(0.5, ge=0.0, le=1.0)

    @field_validator("weights", "means")
    @classmethod
    def _known(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown feature(s) {', '.join(unknown)}; known: {', '.join(FEATURES)}")
        return {k: float(x) for k, x in v.items()}


class VerdictSpec(BaseModel):
    """The calibrated verdict (`auditor.check.verdict`): ``causal`` judges audits with causal
    deltas, ``attribution`` (no causal features) those made without them."""

    model_config = ConfigDict(extra="forbid")

    causal: VerdictModel = Field(default_factory=lambda: VerdictModel.model_validate(defaults.DEFAULT_VERDICT["causal"]))
    attribution: VerdictModel = Field(
        default_factory=lambda: VerdictModel.model_validate(defaults.DEFAULT_VERDICT["attribution"]))

    @model_validator(mode="before")
    @classmethod
    def _on_the_shipped_models(cls, data: Any) -> Any:
        """A model given in part keeps the shipped model's other keys (its weights and means whole)."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name in ("causal", "attribution"):
            if isinstance(data.get(name), dict):
                out[name] = {**defaults.DEFAULT_VERDICT[name], **data[name]}
        return out

    @model_validator(mode="after")
    def _no_causal_in_attribution(self) -> "VerdictSpec":
        bad = sorted(set(self.attribution.weights) & CAUSAL_FEATURES)
        if bad:
            raise ValueError(f"verdict.attribution judges audits without causal deltas; it cannot use {', '.join(bad)}")
        return self


class Policy(BaseModel):
    """What `audit check` enforces."""

    model_config = ConfigDict(extra="forbid")

    authority_kinds: frozenset[SegmentKind] = Field(
        default=frozenset({SegmentKind.system, SegmentKind.user_request, SegmentKind.user_constraint}),
        description="Segment kinds that speak for the user (support).",
    )
    data_kinds: frozenset[SegmentKind] = Field(
        default=frozenset({SegmentKind.tool_output, SegmentKind.file_context}),
        description="Segment kinds that are data, never instructions (add tool_definition for untrusted tool servers).",
    )
    threshold: float = Field(defaults.DEFAULT_THRESHOLD, ge=0.0, le=1.0, description="Minimum support for tools not listed in `tools`.")
    tools: dict[str, float] = Field(default_factory=lambda: dict(defaults.DEFAULT_TOOL_THRESHOLDS), description="Per-tool minimum support (names or globs).")
    ignore: list[str] = Field(default_factory=lambda: list(defaults.DEFAULT_IGNORE), description="Tool names, action kinds or glob patterns to skip.")
    weighting: Literal["mass", "per_token"] = defaults.DEFAULT_WEIGHTING  # type: ignore[assignment]
    judge: Literal["arguments", "action"] = Field(
        defaults.DEFAULT_JUDGE,  # type: ignore[arg-type]
        description="Judge an action by its decisive arguments (the least supported one) or as a whole call.")
    decisive_arguments: list[str] = Field(
        default_factory=lambda: list(defaults.DEFAULT_DECISIVE_ARGUMENTS),
        description="Argument names (globs) that decide an action's verdict under judge = 'arguments'.")
    arguments: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in defaults.DEFAULT_TOOL_ARGUMENTS.items()},
        description="Per tool (name or glob): its decisive argument names (globs), replacing decisive_arguments.")
    rules: Rules = Field(default_factory=Rules)
    read_only_tools: list[str] = Field(
        default_factory=lambda: list(defaults.DEFAULT_READ_ONLY_TOOLS),
        description="Tool names (globs) that only read: the verdict's read_only feature.")
    decide: Literal["verdict", "support"] = Field(
        defaults.DEFAULT_DECIDE,  # type: ignore[arg-type]
        description="What makes an action unsupported: the calibrated verdict's probability ('verdict') or "
                    "the support threshold alone ('support', with `threshold` and `tools`).")
    verdict: VerdictSpec = Field(default_factory=VerdictSpec)
    source: str = Field("", description="Where the policy came from (file path or 'default').", exclude=True)

    @field_validator("tools")
    @classmethod
    def _tool_thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        for name, value in v.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"tools.{name}: threshold must be a number in [0, 1], got {value!r}")
        return {k: float(x) for k, x in v.items()}

    @model_validator(mode="after")
    def _disjoint(self) -> "Policy":
        both = self.authority_kinds & self.data_kinds
        if both:
            names = ", ".join(sorted(k.value for k in both))
            raise ValueError(f"a segment kind cannot be both authority and data: {names}")
        if not self.authority_kinds:
            raise ValueError("authority_kinds is empty: nothing could ever support an action")
        for kind in (SegmentKind.action,):
            if kind in self.authority_kinds or kind in self.data_kinds:
                raise ValueError("'action' segments are the thing explained, not a support kind")
        return self

    # -- lookups ---------------------------------------------------------------------------
    def threshold_for(self, tool_name: str | None) -> float:
        """The minimum support for a tool: exact key, else the most specific matching glob, else `threshold`."""
        if tool_name is None:
            return self.threshold
        found = _most_specific(self.tools, tool_name)
        return self.threshold if found is None else found

    def decisive_for(self, tool_name: str | None, names: list[str]) -> list[str]:
        """Which of ``names`` (an action's explained arguments) decide the verdict, in their order."""
        patterns = _most_specific(self.arguments, tool_name) if tool_name is not None else None
        if patterns is None:
            patterns = self.decisive_arguments
        return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]

    def read_only(self, tool_name: str | None) -> bool:
        """Whether a tool only reads, by its name (`read_only_tools`)."""
        return tool_name is not None and any(fnmatch.fnmatchcase(tool_name, p) for p in self.read_only_tools)

    def ignores(self, action: Action) -> bool:
        """True when the action's tool name or kind matches an entry of `ignore` (globs allowed)."""
        names = [action.kind.value]
        if action.tool_name:
            names.append(action.tool_name)
        return any(fnmatch.fnmatchcase(n, pat) for n in names for pat in self.ignore)

    def with_overrides(self, **changes: Any) -> "Policy":
        data = self.model_dump()
        data.update({k: v for k, v in changes.items() if v is not None})
        try:
            out = Policy.model_validate(data)
        except ValidationError as exc:
            raise PolicyError(f"override: {_format_errors(exc)}") from exc
        out.source = self.source
        return out


def _most_specific(table: dict[str, Any], name: str) -> Any:
    """``table``'s value for ``name``: the exact key, else the longest matching glob, else None."""
    if name in table:
        return table[name]
    matches = [(len(pat.replace("*", "")), pat) for pat in table if fnmatch.fnmatchcase(name, pat)]
    return table[max(matches)[1]] if matches else None


DEFAULT_POLICY_RESOURCE = "default_policy.toml"


def _format_errors(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in e.get("loc", ())) or "<root>"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def parse_policy(text: str, source: str = "<string>", base: Policy | None = None) -> Policy:
    """Parse a TOML policy; keys not given keep ``base``'s values (``auditor.check.defaults`` if None)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from exc
    if "check" in data and isinstance(data["check"], dict) and len(data) == 1:
        data = data["check"]  # also accept everything under a [check] table (pyproject-style)
    return policy_from_dict(data, source, base)


def policy_from_dict(data: Mapping[str, Any], source: str = "<dict>", base: Policy | None = None) -> Policy:
    """A policy from its JSON form (``Policy.model_dump(mode="json")``, as the store records it
    beside each verdict, or a parsed TOML table); keys not given keep ``base``'s values.

    >>> policy_from_dict({"threshold": 0.4, "tools": {"send_email": 0.6}}, "recorded").threshold_for("send_email")
    0.6
    """
    merged: dict[str, Any] = base.model_dump() if base is not None else {}
    for key, value in data.items():
        if key in ("tools", "rules", "arguments") and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        elif key == "verdict" and isinstance(value, dict) and isinstance(merged.get(key), dict):
            # per model, the keys given replace the base's (weights and means whole); the rest stay
            models = dict(merged[key])
            for name, given in value.items():
                models[name] = ({**models[name], **given} if isinstance(given, dict) and isinstance(models.get(name), dict)
                                else given)
            merged[key] = models
        else:
            merged[key] = value
    try:
        policy = Policy.model_validate(merged)
    except ValidationError as exc:
        raise PolicyError(f"{source}: {_format_errors(exc)}") from exc
    policy.source = source
    return policy


def policy_from_record(data: Mapping[str, Any], source: str = "recorded") -> Policy:
    """The policy recorded beside stored verdicts (`action_verdicts.policy`). One recorded before
    the calibrated verdict existed has no ``decide`` key and judged by support, so it still does.

    >>> policy_from_record({"threshold": 0.3}).decide
    'support'
    """
    return policy_from_dict({"decide": "support", **data}, source)


def default_policy() -> Policy:
    """The shipped policy (``auditor/check/default_policy.toml``), calibrated on the injection benchmark."""
    text = resources.files("auditor.check").joinpath(DEFAULT_POLICY_RESOURCE).read_text(encoding="utf-8")
    return parse_policy(text, source="default")


def load_policy(path: str | Path | None = None) -> Policy:
    """Load a policy file on top of the defaults; ``None`` gives the defaults."""
    base = default_policy()
    if path is None:
        return base
    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"{path}: policy file not found")
    return parse_policy(path.read_text(encoding="utf-8"), source=str(path), base=base)
