"""Attribution engine: FlashTrace (span-wise IFR with recursive hops) on Hugging Face models.

    from auditor.attribution import attribute, attribute_many, list_methods, Target

One forward pass captures the per-layer states (`capture` -> `StateCache`); every target of the
sequence (any prefix) is then explained with cheap passes over those states. See
docs/spec algorithm.md for the method and `flashtrace.py` for the choices it leaves open.
`target_logprobs` (ablation.py) scores edited variants of a sequence on a shared prefix KV cache.
`extend` (incremental.py) adds new tokens to a `StateCache`; `StateCacheStore` (state_store.py)
keeps caches by token prefix within a memory budget and extends the longest one per request.
"""

from .ablation import Variant, VariantLogprob, target_logprobs, target_logprobs_many
from .adapters import ARCH_SPECS, UnsupportedArchitecture, supported_architectures
from .api import METHODS, attribute, attribute_many, get_method, list_methods
from .incremental import extend
from .result import AttributionResult, Target
from .state_store import StateCacheStore, StoreStats
from .capturing import capture
from .states import LAYER_STATE_NAMES, StateCache

__all__ = [
    "attribute",
    "attribute_many",
    "list_methods",
    "get_method",
    "METHODS",
    "Target",
    "AttributionResult",
    "UnsupportedArchitecture",
    "StateCache",
    "capture",
    "extend",
    "StateCacheStore",
    "StoreStats",
    "LAYER_STATE_NAMES",
    "ARCH_SPECS",
    "supported_architectures",
    "target_logprobs",
    "target_logprobs_many",
    "Variant",
    "VariantLogprob",
]
