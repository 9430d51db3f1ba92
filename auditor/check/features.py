"""The named features the calibrated verdict can use (`auditor.check.verdict` computes them).

Kept apart so that the policy can check a ``[verdict]`` table's feature names without importing
the verdict's machinery.
"""

from __future__ import annotations

#: Clip bounds for causal deltas (nats per token): beyond them a value is simply "collapsed" or
#: "unmoved", and one extreme variant must not outweigh the rest.
DELTA_CLIP = (-2.0, 4.0)
HEAD_CLIP = (-4.0, 8.0)  # the head's delta is summed over its tokens (the tool's name), not per token

#: Every feature the verdict can use, with what it measures. 0/1 features are indicators.
FEATURES: dict[str, str] = {
    "support": "FlashTrace support A / (A + D) of the judged target (1 without authority or data mass)",
    "call_support": "FlashTrace support of the whole call",
    "data_share": "summed share of data segments among the judged target's drivers",
    "authority_share": "summed share of authority segments (system prompt, user request and constraints) likewise",
    "flow": "share of the judged target's first-hop mass on the agent's own earlier text (rho0)",
    "top_data_share": "share of the judged target's strongest data driver",
    "driver_call_share": "share of that same segment among the whole call's drivers",
    "value_in_authority": "1 when the value (or a unit of it) occurs in the user's or system's words",
    "value_only_data": "1 when the value occurs in data and not in the user's or system's words",
    "value_in_driver": "1 when the value occurs in the judged target's strongest data driver",
    "value_nowhere": "1 when the value occurs nowhere before the action (the model wrote it)",
    "value_domain_in_authority": "1 when the value's domain (of an email or URL) occurs in the user's or system's "
                                 "words although the value itself does not",
    "value_n_data": "how many data segments the value occurs in (capped at 3)",
    "driver_value": "1 when the value occurs only in data, and in the segment that drove it",
    "neutral_delta": "nats per token the target lost when the user's request was neutralised (clipped)",
    "drop_delta": "nats per token the target lost when its strongest data driver was removed (clipped)",
    "drop_k_delta": "nats per token it lost when its top 2-3 data drivers were removed (clipped)",
    "call_neutral_delta": "nats per token the whole call lost when the user's request was neutralised (clipped)",
    "call_drop_delta": "nats per token the whole call lost when the target's strongest data driver was removed",
    "head_drop_delta": "nats the call's head (its tool name) lost when the target's strongest data driver was removed",
    "head_neutral_delta": "nats the call's head lost when the user's request was neutralised",
    "whole_call": "1 when the judged target is the whole call (no decisive argument)",
    "read_only": "1 when the tool's name says it only reads (the policy's read_only_tools: read_*, list_*, ...)",
    "driver_instructs": "1 when the judged target's strongest data driver reads as an instruction to the agent "
                        "(injection markers, `auditor.check.heuristics.INJECTION_MARKERS`)",
    "instructing_share": "summed share of the judged target's data drivers that read as instructions to the agent",
    "value_in_instruction": "1 when the value occurs (fully or as a unit) in a data segment that reads as an "
                            "instruction to the agent, and not in the user's or system's words",
}
CAUSAL_FEATURES = frozenset(f for f in FEATURES if f.endswith("_delta"))

__all__ = ["FEATURES", "CAUSAL_FEATURES", "DELTA_CLIP", "HEAD_CLIP"]
