"""Defaults of `audit check`, calibrated on the injection benchmark (v2).

Produced by ``benchmarks/bench_check.py --calibrate`` (``docs/benchmarks/check.md`` has the figures
and the commands): the decisive-argument list, the calibrated verdict's features, weights and
threshold (``DEFAULT_VERDICT``, chosen on the calibration split by cross-validation that leaves
attack families and templates out; the held-out split scored once). Under ``decide = "verdict"``
(the default) the support threshold below is reported, not enforced; it is the support rule's
cut (``decide = "support"``) from the first benchmark. ``default_policy.toml`` carries the same
numbers (a test keeps them equal). The store records the check's verdicts (`action_verdicts`);
its migrations write ``DEFAULT_THRESHOLD``, ``DEFAULT_JUDGE`` and ``DEFAULT_DECISIVE_ARGUMENTS``
out literally for the audits recorded before verdicts were (a test keeps them equal).
"""

from __future__ import annotations

#: Minimum support (authority / (authority + data)) for an action whose tool has no own threshold.
DEFAULT_THRESHOLD: float = 0.27

#: Per-tool minimum support (names or globs). The benchmark calibrates the read-only tools
#: (read_*, search_*, list_*, get_*) at the overall threshold — benign reads whose arguments come
#: from a listing or search results keep above it — so none is listed.
DEFAULT_TOOL_THRESHOLDS: dict[str, float] = {}

#: Actions the default policy does not check (a final answer has no side effect).
DEFAULT_IGNORE: tuple[str, ...] = ("final_answer",)

#: Weighting of the support ratio ("mass" or "per_token").
DEFAULT_WEIGHTING: str = "mass"

#: How an action is judged: "arguments" (its least supported decisive argument) or "action".
DEFAULT_JUDGE: str = "arguments"

#: Argument names (globs) that decide an action's verdict: who receives its effect. A body, a
#: message text or a title may rightly restate what the agent read; a recipient the user did not
#: name is what an injection changes. Tools with none of these (statements, commands, edits) are
#: judged as whole calls. The benchmark chose this list over judging every argument (see
#: docs/benchmarks/check.md).
DEFAULT_DECISIVE_ARGUMENTS: tuple[str, ...] = (
    "to", "cc", "bcc", "recipient*", "attendee*", "invitee*", "participant*", "channel", "share_with",
)

#: Per tool (name or glob): its decisive arguments, replacing the list above. None by default.
DEFAULT_TOOL_ARGUMENTS: dict[str, tuple[str, ...]] = {}

#: Attribution the default check replays with.
DEFAULT_METHOD: str = "flashtrace"
DEFAULT_HOPS: int = 1

#: Extra rules (see auditor.check.scoring): flag a data segment as the strongest driver; flag
#: actions driven mostly through data-driven reasoning (1.0 = off).
DEFAULT_DATA_TOP_DRIVER: bool = False
DEFAULT_MAX_REASONING_FLOW: float = 1.0

#: Tool names (globs) that only read (the verdict's read_only feature): the usual naming of
#: read-only tools, not any benchmark's list.
DEFAULT_READ_ONLY_TOOLS: tuple[str, ...] = ("read_*", "list_*", "get_*", "search_*", "find_*", "view_*", "show_*",
                                            "lookup_*")

#: What makes an action unsupported: "verdict" (the calibrated probability) or "support".
DEFAULT_DECIDE: str = "verdict"

#: The calibrated verdict (auditor.check.verdict): logistic regressions over named features, fitted
#: on the benchmark's calibration split by `benchmarks/bench_check.py --calibrate`, which rewrites
#: the block below and the [verdict] tables of default_policy.toml (a test keeps them equal).
# BEGIN calibrated verdict: `python benchmarks/bench_check.py --calibrate` writes this block
DEFAULT_VERDICT: dict[str, dict] = {
    "causal": {
        "intercept": -10.5164,
        "threshold": 0.4395,
        "weights": {
            "data_share": 5.4172,
            "value_in_instruction": 2.6442,
            "value_in_driver": 1.9487,
            "call_drop_delta": 1.1281,
            "read_only": -3.3562,
            "call_neutral_delta": -3.6781,
            "flow": 11.1789,
            "whole_call": 2.5909
        },
        "means": {
            "data_share": 0.5993,
            "value_in_instruction": 0.1185,
            "value_in_driver": 0.7493,
            "call_drop_delta": 0.4395,
            "read_only": 0.2755,
            "call_neutral_delta": 0.0884,
            "flow": 0.1415,
            "whole_call": 0.5647
        }
    },
    "attribution": {
        "intercept": -6.2385,
        "threshold": 0.2896,
        "weights": {
            "data_share": 3.9846,
            "value_in_instruction": 2.038,
            "value_in_driver": 1.9974
        },
        "means": {
            "data_share": 0.5993,
            "value_in_instruction": 0.1185,
            "value_in_driver": 0.7493
        }
    }
}
# END calibrated verdict
