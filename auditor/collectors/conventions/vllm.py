"""vLLM's own ``llm_request`` spans (``--otlp-traces-endpoint``): no prompt or completion text,
but the request's timings and token counts, attached to the client chat span they belong to.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from auditor.collectors.conventions.base import Convention

if TYPE_CHECKING:  # pragma: no cover
    from auditor.collectors.spans import SpanRecord

_SUB_REQUEST = re.compile(r"^(resp_.+)_\d+$")

FIGURES = {  # attribute -> the name it is kept under in the chat message's metadata
    "gen_ai.request.id": "request_id",
    "gen_ai.usage.prompt_tokens": "prompt_tokens",
    "gen_ai.usage.completion_tokens": "completion_tokens",
    "gen_ai.latency.time_to_first_token": "time_to_first_token",
    "gen_ai.latency.e2e": "e2e",
    "gen_ai.latency.time_in_queue": "time_in_queue",
    "gen_ai.latency.time_in_model_prefill": "time_in_model_prefill",
    "gen_ai.latency.time_in_model_decode": "time_in_model_decode",
    "gen_ai.latency.time_in_model_inference": "time_in_model_inference",
    "gen_ai.request.max_tokens": "max_tokens",
    "gen_ai.request.temperature": "temperature",
    "gen_ai.request.top_p": "top_p",
    "gen_ai.request.n": "n",
    "gen_ai.response.finish_reasons": "finish_reasons",
}


def response_ids(sp: "SpanRecord") -> list[str]:
    """The client-side response ids an ``llm_request`` span may belong to: its
    ``gen_ai.request.id``, which is the chat completion's id, while for a Responses API request
    vLLM (0.32) names it ``{response id}_{n}``."""
    rid = sp.attributes.get("gen_ai.request.id")
    if rid in (None, ""):
        return []
    rid = str(rid)
    m = _SUB_REQUEST.match(rid)
    return [rid, m.group(1)] if m else [rid]


def is_llm_request(sp: "SpanRecord") -> bool:
    return sp.name == "llm_request" or any(k.startswith("gen_ai.latency.") for k in sp.attributes)


def llm_request_figures(sp: "SpanRecord") -> dict[str, Any]:
    out: dict[str, Any] = {"span_id": sp.span_id}
    for k, name in FIGURES.items():
        if k in sp.attributes:
            out[name] = sp.attributes[k]
    return out


class VLLM(Convention):
    name = "vllm"

    def span_role(self, sp: "SpanRecord") -> str | None:
        return "llm_request" if is_llm_request(sp) else None
