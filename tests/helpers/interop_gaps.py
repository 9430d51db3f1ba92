"""What each third-party OpenAI instrumentation does not capture, as a change to the trajectory
auditor's own instrumentor yields for the same run. The interop tests assert these and nothing
else; docs/tracing-stack.md lists the same gaps for users.

Tested: opentelemetry-instrumentation-openai-v2 2.4b0 (+ opentelemetry-util-genai 1.1b0),
openinference-instrumentation-openai 0.1.66, opentelemetry-instrumentation-openai (OpenLLMetry)
0.62.4, with openai 3.57.0 (pinned in pyproject's ``interop`` extra).
"""

from __future__ import annotations

import copy
from typing import Any

RESPONSES = ("responses", "responses_stream")


def instruments(library: str, mode: str) -> bool:
    """False where the library makes no span at all: the official one ignores the Responses API."""
    return not (library == "official" and mode in RESPONSES)


def expected(library: str, mode: str, reference: dict[str, Any]) -> dict[str, Any]:
    """``reference`` (auditor's normalised trajectory of the run) as ``library`` yields it."""
    out = copy.deepcopy(reference)
    if library == "official":
        out["tools"] = []  # never records the tool definitions offered to the model
        for m in out["messages"]:
            m.pop("reasoning", None)  # nor reasoning (vLLM's reasoning_content)
    return out


def expected_warnings(library: str, mode: str) -> list[str]:
    """The load issues assembling the library's spans raises (as substrings, in order)."""
    if library == "official":
        return ["no chat span recorded the tool definitions"]
    if library == "openllmetry" and mode in RESPONSES:
        # names Responses API calls by their item id (fc_...), not the call_id their results answer
        return ["tool call id(s) re-keyed to the ids their results answer"]
    return []


CONVENTION = {"auditor": "gen_ai", "official": "gen_ai", "openinference": "openinference", "openllmetry": "openllmetry"}
