"""Auditors without a model download, for tests and for smoke-testing a cluster.

`tiny_auditor` is a factory with `auditor.audit.runs.make_auditor`'s signature: a real `Auditor`
(real renders, real FlashTrace attributions) on a tiny seeded random llama (`tiny_model`) and the
in-memory word-level tokenizer. Every process builds the same weights, so audits made by Ray
workers equal audits made in the driver. Point a distributed run at it with
``audit trace --ray --auditor-factory auditor.testing.auditors:tiny_auditor``.
"""

from __future__ import annotations

from typing import Any

#: The model name its audits record.
TINY_MODEL_NAME = "tiny-llama"


def tiny_auditor(**settings: Any) -> Any:
    """An `Auditor` on the tiny random llama; the replay settings that apply to it (method,
    hops, max_tokens, device, arguments) are honoured, the model and dtype are not."""
    from auditor.audit.replay import Auditor
    from auditor.testing.models import tiny_model, tiny_tokenizer

    keep = {k: v for k, v in settings.items() if k in ("method", "hops", "max_tokens", "device", "arguments")}
    return Auditor((tiny_model("llama"), tiny_tokenizer()), model_name=TINY_MODEL_NAME, **keep)
