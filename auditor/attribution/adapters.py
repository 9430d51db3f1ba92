"""Per-architecture knowledge: where the decoder layers, attention output projection and the
post-attention state live in a Hugging Face causal LM.

What is *not* here: the queries/keys/values. Those are read from inside the model's own attention
call (see `capturing.capture`): every supported family dispatches attention through transformers'
``AttentionInterface`` with q/k already normed and rotated, so capturing them there is exact for
q/k norms (Qwen3, Gemma 3), partial rotary (Phi-3), local/global rope (Gemma 3), value biases
(Qwen2), scaling (Gemma's query_pre_attn_scalar, GPT-2's inverse-layer scaling), soft-capping and
sliding windows (passed to the attention call as arguments).

Sandwich-norm families (Gemma 2/3, OLMo 2) normalise the attention output before the residual
add: ``m = x + γ ⊙ a / rms(a)``. ``1 / rms(a[l, i])`` is a scalar per position read off the
forward pass (``attn.out_scale``) and γ a fixed vector, so a contribution of source j to target i
is ``γ ⊙ (r_i · α_ij · f_j)``: γ is folded into the output projection, r_i into the target
weights of the attention column sums, and the decomposition stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel


class UnsupportedArchitecture(ValueError):
    """The model's architecture lacks something attribution needs; the message names it."""


@dataclass(frozen=True)
class ArchSpec:
    """Where things are, as attribute paths (dotted from the CausalLM for `layers`)."""

    layers: str  # ModuleList of decoder layers
    attn: str  # attribute of a layer: the attention module
    o_proj: str  # attribute of the attention module: output projection (Linear or Conv1D)
    mid: str  # attribute of a layer whose input is m = resid_mid
    attn_out_norm: str | None = None  # sandwich: norm on the attention output before the add
    norm_offset: float = 0.0  # Gemma RMSNorm scales by (1 + weight)
    conv1d: bool = False  # GPT-2 Conv1D stores weight as [in, out]


_PRE_NORM = ArchSpec(layers="model.layers", attn="self_attn", o_proj="o_proj", mid="post_attention_layernorm")
_GEMMA = ArchSpec(
    layers="model.layers",
    attn="self_attn",
    o_proj="o_proj",
    mid="pre_feedforward_layernorm",
    attn_out_norm="post_attention_layernorm",
    norm_offset=1.0,
)

#: model_type -> where things live. Families tested on tiny random models in tests/attribution.
ARCH_SPECS: dict[str, ArchSpec] = {
    "llama": _PRE_NORM,  # Llama 2/3, SmolLM2
    "mistral": _PRE_NORM,
    "qwen2": _PRE_NORM,
    "qwen3": _PRE_NORM,
    "phi3": _PRE_NORM,
    "gemma2": _GEMMA,
    "gemma3_text": _GEMMA,
    "olmo2": ArchSpec(
        layers="model.layers", attn="self_attn", o_proj="o_proj", mid="mlp", attn_out_norm="post_attention_layernorm"
    ),
    "gpt2": ArchSpec(layers="transformer.h", attn="attn", o_proj="c_proj", mid="ln_2", conv1d=True),
}


def supported_architectures() -> list[str]:
    return sorted(ARCH_SPECS)


def _get(obj: object, path: str):
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


class Adapter:
    """Binds an `ArchSpec` to one model instance and checks every piece is really there."""

    def __init__(self, model: "PreTrainedModel"):
        config = getattr(model, "config", None)
        model_type = getattr(config, "model_type", None)
        spec = ARCH_SPECS.get(model_type or "")
        if spec is None:
            raise UnsupportedArchitecture(
                f"attribution does not support model_type {model_type!r} ({type(model).__name__}); supported: "
                f"{', '.join(supported_architectures())}. An adapter needs: the list of decoder layers, an "
                "attention module that dispatches through transformers' AttentionInterface, its output "
                "projection, and the module whose input is the post-attention residual state"
            )
        self.model = model
        self.spec = spec
        self.model_type = model_type
        layers = _get(model, spec.layers)
        missing: list[str] = []
        if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
            missing.append(f"decoder layers at `{spec.layers}`")
            layers = []
        for i, layer in enumerate(layers):
            attn = getattr(layer, spec.attn, None)
            if attn is None:
                missing.append(f"layer {i}: attention module `{spec.attn}`")
                continue
            if getattr(attn, spec.o_proj, None) is None:
                missing.append(f"layer {i}: output projection `{spec.attn}.{spec.o_proj}`")
            if getattr(layer, spec.mid, None) is None:
                missing.append(f"layer {i}: post-attention module `{spec.mid}`")
            if spec.attn_out_norm and getattr(layer, spec.attn_out_norm, None) is None:
                missing.append(f"layer {i}: sandwich norm `{spec.attn_out_norm}`")
            if not getattr(attn, "is_causal", True) or not getattr(config, "is_causal", True):
                missing.append(f"layer {i}: causal attention (this model attends bidirectionally)")
            if getattr(attn, "is_cross_attention", False):
                missing.append(f"layer {i}: self-attention (found cross-attention)")
        if getattr(config, "add_cross_attention", False):
            missing.append("decoder-only self-attention (config.add_cross_attention is set)")
        if missing:
            raise UnsupportedArchitecture(
                f"{type(model).__name__} (model_type {model_type!r}) is missing what attribution needs: "
                + "; ".join(missing)
            )
        self.layers: list[nn.Module] = list(layers)
        self.attn_modules: list[nn.Module] = [getattr(layer, spec.attn) for layer in self.layers]
        self.mid_modules: list[nn.Module] = [getattr(layer, spec.mid) for layer in self.layers]
        self.out_norms: list[nn.Module] | None = (
            [getattr(layer, spec.attn_out_norm) for layer in self.layers] if spec.attn_out_norm else None
        )

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def sandwich(self) -> bool:
        return self.out_norms is not None

    def out_proj(self, layer: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(W_O [d, H*dh], b_O [d] or None) of one layer, as the model stores them (no copy)."""
        proj = getattr(self.attn_modules[layer], self.spec.o_proj)
        weight = proj.weight.t() if self.spec.conv1d else proj.weight
        return weight, getattr(proj, "bias", None)

    def out_gamma(self, layer: int) -> torch.Tensor | None:
        """Sandwich norm's effective γ [d] (weight + offset), or None for pre-norm families."""
        if self.out_norms is None:
            return None
        return self.out_norms[layer].weight.float() + self.spec.norm_offset

    def out_norm_eps(self, layer: int) -> float:
        norm = self.out_norms[layer]  # type: ignore[index]
        for name in ("eps", "variance_epsilon", "epsilon"):
            if hasattr(norm, name):
                return float(getattr(norm, name))
        raise UnsupportedArchitecture(f"cannot find the epsilon of {type(norm).__name__}")

    def base_model(self) -> nn.Module:
        return self.model.base_model


__all__ = ["Adapter", "ArchSpec", "ARCH_SPECS", "UnsupportedArchitecture", "supported_architectures"]
