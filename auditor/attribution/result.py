"""`Target` (what to explain) and `AttributionResult` (one serialisable answer)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch


@dataclass
class Target:
    """Positions being explained and how the rest of the sequence is split.

    output:    positions O being explained (sorted ints)
    reasoning: intermediate positions R (model-generated, before the output)
    inputs:    input positions X; default: all positions < min(output) not in reasoning
    weights:   optional weights on the output positions (default 1)
    spans:     optional half-open input segments [start, end), used by "loo"
    """

    output: Sequence[int]
    reasoning: Sequence[int] = ()
    inputs: Sequence[int] | None = None
    weights: Sequence[float] | None = None
    spans: Sequence[tuple[int, int]] | None = None

    def resolved(self, n_tokens: int) -> "ResolvedTarget":
        """Validate against a sequence of `n_tokens` and fill the defaults."""
        out = sorted(int(i) for i in self.output)
        if not out:
            raise ValueError("Target.output is empty")
        if len(set(out)) != len(out):
            raise ValueError("Target.output has repeated positions")
        if out[0] < 0 or out[-1] >= n_tokens:
            raise ValueError(f"Target.output positions must lie in [0, {n_tokens}); got {out[0]}..{out[-1]}")
        reasoning = sorted({int(i) for i in self.reasoning})
        if reasoning and (reasoning[0] < 0 or reasoning[-1] >= n_tokens):
            raise ValueError(f"Target.reasoning positions must lie in [0, {n_tokens})")
        if set(reasoning) & set(out):
            raise ValueError("Target.reasoning and Target.output overlap")
        if self.inputs is None:
            rset = set(reasoning)
            inputs = [i for i in range(out[0]) if i not in rset]
        else:
            inputs = sorted({int(i) for i in self.inputs})
            if inputs and (inputs[0] < 0 or inputs[-1] >= n_tokens):
                raise ValueError(f"Target.inputs positions must lie in [0, {n_tokens})")
            if set(inputs) & (set(out) | set(reasoning)):
                raise ValueError("Target.inputs overlaps output or reasoning")
        if self.weights is None:
            weights = [1.0] * len(out)
        else:
            if len(self.weights) != len(self.output):
                raise ValueError("Target.weights must have one weight per output position")
            order = sorted(range(len(self.output)), key=lambda k: int(self.output[k]))
            weights = [float(self.weights[k]) for k in order]
            if any(w < 0 for w in weights) or sum(weights) <= 0:
                raise ValueError("Target.weights must be non-negative with a positive sum")
        spans = None
        if self.spans is not None:
            spans = [(int(a), int(b)) for a, b in self.spans]
            for a, b in spans:
                if not 0 <= a < b <= n_tokens:
                    raise ValueError(f"Target.spans: bad half-open segment [{a}, {b}) for {n_tokens} tokens")
        return ResolvedTarget(out, reasoning, inputs, weights, spans)

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": [int(i) for i in self.output],
            "reasoning": [int(i) for i in self.reasoning],
            "inputs": None if self.inputs is None else [int(i) for i in self.inputs],
            "weights": None if self.weights is None else [float(w) for w in self.weights],
            "spans": None if self.spans is None else [[int(a), int(b)] for a, b in self.spans],
        }


@dataclass
class ResolvedTarget:
    output: list[int]
    reasoning: list[int]
    inputs: list[int]
    weights: list[float]
    spans: list[tuple[int, int]] | None

    @property
    def end(self) -> int:
        """Prefix length that matters: max(output) + 1."""
        return self.output[-1] + 1


def _t(x: Any) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32)


@dataclass
class AttributionResult:
    """One explanation. Tensors are float32 on CPU.

    token_scores: [N] final input importance S over the inputs X (zeros elsewhere)
    hop_scores:   per hop k, s^k [N] (hop 0 explains the output; hop k>=1 the reasoning)
    flow_ratios:  rho_k, the share of hop k's mass on reasoning tokens
    layer_shares: {"attention", "residual", "mlp"} -> [L] (hop 0; see flashtrace.span_pass)
    info:         method, hops, sizes, dtype, device, seconds, forward_seconds, peak_memory_bytes,
                  chunk_size, versions, ...
    """

    method: str
    hops: int
    token_scores: torch.Tensor
    hop_scores: list[torch.Tensor] = field(default_factory=list)
    flow_ratios: list[float] = field(default_factory=list)
    layer_shares: dict[str, torch.Tensor] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] | None = None

    def top(self, k: int = 10) -> list[tuple[int, float]]:
        """The k highest-scoring positions as (position, score)."""
        k = min(k, self.token_scores.numel())
        vals, idx = torch.topk(self.token_scores, k)
        return [(int(i), float(v)) for v, i in zip(vals, idx)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "hops": self.hops,
            "token_scores": self.token_scores.tolist(),
            "hop_scores": [h.tolist() for h in self.hop_scores],
            "flow_ratios": [float(r) for r in self.flow_ratios],
            "layer_shares": {k: v.tolist() for k, v in self.layer_shares.items()},
            "info": self.info,
            "target": self.target,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AttributionResult":
        return cls(
            method=data["method"],
            hops=int(data["hops"]),
            token_scores=_t(data["token_scores"]),
            hop_scores=[_t(h) for h in data.get("hop_scores", [])],
            flow_ratios=[float(r) for r in data.get("flow_ratios", [])],
            layer_shares={k: _t(v) for k, v in data.get("layer_shares", {}).items()},
            info=dict(data.get("info", {})),
            target=data.get("target"),
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "AttributionResult":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def show(self, tokens: Sequence[str] | None = None, k: int = 10) -> str:
        """A short text summary: top positions (with their tokens when given) and the flow."""
        lines = [f"{self.method} (hops={self.hops}): top {k} input positions"]
        for pos, score in self.top(k):
            tok = f" {tokens[pos]!r}" if tokens is not None and pos < len(tokens) else ""
            lines.append(f"  {pos:>6}{tok}: {score:.4f}")
        if self.flow_ratios:
            lines.append("  flow ratios: " + ", ".join(f"rho{k}={r:.3f}" for k, r in enumerate(self.flow_ratios)))
        return "\n".join(lines)


__all__ = ["Target", "ResolvedTarget", "AttributionResult"]
