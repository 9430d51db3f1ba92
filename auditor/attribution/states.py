"""One forward pass that keeps what attribution needs: the `StateCache`.

`capture(model, input_ids)` runs the model's decoder once and records, per layer l (names as in
TransformerLens, pinned by a test; shape letters at the end):

    layers.{l}.resid_pre        x[l]  [N, d]
    layers.{l}.resid_mid        m[l]  [N, d]   the model's own post-attention state
    layers.{l}.resid_post       y[l]  [N, d]   (stored once: it is x[l+1])
    layers.{l}.attn.queries     [H, N, dh]     after q-norm and rotary
    layers.{l}.attn.keys        [G, N, dh]     after k-norm and rotary
    layers.{l}.attn.values      [G, N, dh]     v (with bias), from the real normed input
    layers.{l}.attn.out_scale   [N]            sandwich families: 1 / rms(a[l, i])

Queries/keys/values are taken inside the model's own attention call: during the capture the
model's attention implementation is switched to ``"auditor_capture"`` (registered in
transformers' ``AttentionInterface``), which records them and computes the attention output
memory-leanly (SDPA, or row chunks when soft-capping needs the eager formula). No N×N map is
kept; `StateCache.attention_rows` recomputes exactly the rows a target needs, with the same
causal mask, sliding window, scaling and soft-capping the model used. ``store_attention=True``
keeps the full maps instead (tests use it to show stored and recomputed attention agree).

``capture(model, ids, prefix=cache)`` (`auditor.attribution.capture`) runs only the tokens after a cached prefix, feeding the
prefix's keys/values to the model as its KV cache (`incremental.extend`); the attention function
then gets the new tokens' queries and every key, and places the queries at the end (causal offset).

Shape letters used in every module's comments: N tokens in the captured sequence; P the prefix
length of one target (max target position + 1: only positions < P matter); L layers; H query
heads, G key/value heads (GQA: head h reads kv-head h // (H // G)); dh head size, d hidden size;
B targets processed together (1 for a span, |O| for per-token IFR batches); t target rows and n
source positions in the current chunk.
"""

from __future__ import annotations

import contextvars
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import torch

from .adapters import Adapter, UnsupportedArchitecture

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel

CAPTURE_IMPL = "auditor_capture"


@contextmanager
def attention_implementation(configs: Iterable[Any], impl: str) -> Iterator[None]:
    """Run attention as `impl` inside the block (transformers reads each config's
    ``_attn_implementation`` at every forward), then give each config back what it had."""
    by_id = {id(c): c for c in configs}
    saved = {k: c._attn_implementation for k, c in by_id.items()}
    try:
        for c in by_id.values():
            c._attn_implementation = impl
        yield
    finally:
        for k, c in by_id.items():
            c._attn_implementation = saved[k]

#: Storage dtypes of a `StateCache` by name.
STORAGE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

#: Per-layer state names, in order (a test pins this list).
LAYER_STATE_NAMES: tuple[str, ...] = (
    "resid_pre",
    "resid_mid",
    "resid_post",
    "attn.queries",
    "attn.keys",
    "attn.values",
    "attn.out_scale",
)


@dataclass
class AttnParams:
    scaling: float
    softcap: float | None
    window: int | None  # key j is visible from query i iff j <= i and i - j < window


def attention_rows(
    q_rows: torch.Tensor,  # [H, t, dh]
    keys: torch.Tensor,  # [G, P, dh]
    rows: torch.Tensor,  # [t] long, query positions
    params: AttnParams,
) -> torch.Tensor:  # [H, t, P] float32
    """Softmax attention rows for query positions `rows` over keys 0..P-1, in float32.

    Same formula as transformers' eager attention: scores·scaling, optional soft-capping
    tanh(s/c)·c, causal (+ sliding window) mask, softmax over keys.
    """
    H, t, dh = q_rows.shape
    G, P, _ = keys.shape
    q = q_rows.float().reshape(G, H // G, t, dh)
    scores = torch.matmul(q, keys.float().transpose(-1, -2).unsqueeze(1)).reshape(H, t, P)
    scores.mul_(params.scaling)
    if params.softcap is not None:
        scores.div_(params.softcap).tanh_().mul_(params.softcap)
    j = torch.arange(P, device=keys.device)
    i = rows.to(keys.device).unsqueeze(1)
    hidden = j.unsqueeze(0) > i
    if params.window is not None:
        hidden |= (i - j.unsqueeze(0)) >= params.window
    scores.masked_fill_(hidden.unsqueeze(0), float("-inf"))
    return torch.softmax(scores, dim=-1)


def _attend(query, key, value, params: AttnParams, row_chunk: int = 256) -> torch.Tensor:
    """Attention output [1, n, H, dh] for the capture forward, never holding an n×K map per head
    beyond one row chunk (SDPA when there is no soft-capping).

    Queries are the last n of the K key positions (n == K in a plain capture; n < K when an
    extension feeds a prefix's keys as the model's cache): query r sits at position K - n + r."""
    _, H, n, dh = query.shape
    G, K = key.shape[1], key.shape[2]
    offset = K - n
    if params.softcap is None:
        mask = None
        if offset > 0 or (params.window is not None and params.window < K):
            i = torch.arange(offset, K, device=query.device)[:, None]
            j = torch.arange(K, device=query.device)[None, :]
            mask = j <= i
            if params.window is not None:
                mask &= (i - j) < params.window
        out = torch.nn.functional.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=mask,
            is_causal=mask is None,
            scale=params.scaling,
            enable_gqa=G != H,
        )
        return out.transpose(1, 2)
    out = torch.empty(n, H, dh, dtype=query.dtype, device=query.device)
    rep = H // G
    for r0 in range(0, n, row_chunk):
        r1 = min(n, r0 + row_chunk)
        k1 = offset + r1  # keys visible to the chunk's last row
        rows = torch.arange(offset + r0, k1, device=query.device)
        probs = attention_rows(query[0, :, r0:r1], key[0, :, :k1], rows, params)  # [H, t, k1]
        o = torch.matmul(probs.reshape(G, rep, r1 - r0, k1), value[0, :, :k1].float().unsqueeze(1))
        out[r0:r1] = o.reshape(H, r1 - r0, dh).transpose(0, 1).to(query.dtype)
        del probs, o
    return out.unsqueeze(0)


@dataclass
class StateCache:
    """Everything attribution needs from one forward pass over `input_ids`.

    Index by name (``cache["layers.3.resid_mid"]``); `names()` lists them. Tensors live on the
    model's device in `dtype` (float32 unless bfloat16 was asked for).
    """

    input_ids: torch.Tensor  # [N] long (CPU)
    adapter: Adapter
    dtype: torch.dtype
    device: torch.device
    resid: list[torch.Tensor] = field(default_factory=list)  # L+1 × [N, d]: x[0..L-1], y[L-1]
    mid: list[torch.Tensor] = field(default_factory=list)  # L × [N, d]
    queries: list[torch.Tensor] = field(default_factory=list)  # L × [H, N, dh]
    keys: list[torch.Tensor] = field(default_factory=list)  # L × [G, N, dh]
    values: list[torch.Tensor] = field(default_factory=list)  # L × [G, N, dh]
    out_scale: list[torch.Tensor] | None = None  # L × [N] (sandwich only)
    params: list[AttnParams] = field(default_factory=list)
    stored_attention: list[torch.Tensor] | None = None  # L × [H, N, N] float32, only if asked
    forward_seconds: float = 0.0
    forward_cpu_seconds: float = 0.0  # process CPU time of the capture (robust on a shared machine)

    # ---- shape facts
    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.numel())

    @property
    def n_layers(self) -> int:
        return len(self.mid)

    @property
    def n_heads(self) -> int:
        return int(self.queries[0].shape[0])

    @property
    def n_kv_heads(self) -> int:
        return int(self.keys[0].shape[0])

    @property
    def head_dim(self) -> int:
        return int(self.queries[0].shape[-1])

    @property
    def hidden_size(self) -> int:
        return int(self.mid[0].shape[-1])

    def head(self, n: int) -> "StateCache":
        """The states of the first `n` tokens (a causal model's states of a prefix are the
        prefix's rows of the whole sequence's), as views of this cache: what an extension starts
        from when a new sequence shares only part of a cached one (`StateCacheStore`)."""
        if not 0 < n <= self.n_tokens:
            raise ValueError(f"head({n}) of a cache of {self.n_tokens} tokens")
        if n == self.n_tokens:
            return self
        out = StateCache(input_ids=self.input_ids[:n], adapter=self.adapter, dtype=self.dtype, device=self.device,
                         params=list(self.params))
        out.resid = [t[:n] for t in self.resid]
        out.mid = [t[:n] for t in self.mid]
        out.queries = [t[:, :n] for t in self.queries]
        out.keys = [t[:, :n] for t in self.keys]
        out.values = [t[:, :n] for t in self.values]
        if self.out_scale is not None:
            out.out_scale = [t[:n] for t in self.out_scale]
        if self.stored_attention is not None:
            out.stored_attention = [t[:, :n, :n] for t in self.stored_attention]
        return out

    def nbytes(self) -> int:
        tensors = [*self.resid, *self.mid, *self.queries, *self.keys, *self.values, *(self.out_scale or [])]
        tensors += self.stored_attention or []
        return sum(t.numel() * t.element_size() for t in tensors)

    # ---- named access
    def names(self) -> list[str]:
        per_layer = [n for n in LAYER_STATE_NAMES if n != "attn.out_scale" or self.out_scale is not None]
        return [f"layers.{l}.{n}" for l in range(self.n_layers) for n in per_layer]

    def __getitem__(self, name: str) -> torch.Tensor:
        parts = name.split(".", 2)
        if len(parts) != 3 or parts[0] != "layers" or not parts[1].isdigit():
            raise KeyError(f"{name!r}: expected 'layers.<l>.<state>', see StateCache.names()")
        l, state = int(parts[1]), parts[2]
        if not 0 <= l < self.n_layers:
            raise KeyError(f"{name!r}: layer {l} out of range (model has {self.n_layers})")
        table: dict[str, Any] = {
            "resid_pre": self.resid[l],
            "resid_mid": self.mid[l],
            "resid_post": self.resid[l + 1],
            "attn.queries": self.queries[l],
            "attn.keys": self.keys[l],
            "attn.values": self.values[l],
            "attn.out_scale": self.out_scale[l] if self.out_scale is not None else None,
        }
        value = table.get(state)
        if value is None:
            raise KeyError(f"{name!r}: no such state; have {', '.join(self.names()[: len(LAYER_STATE_NAMES)])}")
        return value

    def __contains__(self, name: object) -> bool:
        try:
            self[name]  # type: ignore[index]
        except KeyError:
            return False
        return True

    # ---- attention rows
    def attention_rows(self, layer: int, rows: torch.Tensor, prefix: int) -> torch.Tensor:
        """Attention weights [H, t, prefix] float32 of query positions `rows` (all < prefix)."""
        if self.stored_attention is not None:
            return self.stored_attention[layer][:, rows.to(self.device), :prefix]
        q = self.queries[layer][:, rows.to(self.device)]
        return attention_rows(q, self.keys[layer][:, :prefix], rows, self.params[layer])

    def out_heads(self, layer: int) -> torch.Tensor:
        """Per-head output projection [H, dh, d] float32 (γ folded in for sandwich norms)."""
        weight, _ = self.adapter.out_proj(layer)  # [d, H*dh]
        d = weight.shape[0]
        w = weight.detach().float().reshape(d, self.n_heads, self.head_dim).permute(1, 2, 0)
        gamma = self.adapter.out_gamma(layer)
        if gamma is not None:
            w = w * gamma.detach().to(w.device)
        return w.to(self.device)

    def out_bias(self, layer: int) -> torch.Tensor | None:
        _, bias = self.adapter.out_proj(layer)
        return None if bias is None else bias.detach().float().to(self.device)


class _Recorder:
    """Live during one capture: receives tensors from hooks and the attention function."""

    def __init__(self, cache: StateCache, adapter: Adapter, store_attention: bool):
        self.cache = cache
        self.layer_of = {id(m): i for i, m in enumerate(adapter.attn_modules)}
        self.store_attention = store_attention
        L = adapter.n_layers
        self.slots: dict[str, list[Any]] = {
            k: [None] * L for k in ("resid", "mid", "queries", "keys", "values", "out_scale", "params", "attn")
        }
        self.slots["resid"].append(None)

    def keep(self, t: torch.Tensor) -> torch.Tensor:
        return t.detach().to(self.cache.dtype).contiguous()


_ACTIVE: contextvars.ContextVar[_Recorder | None] = contextvars.ContextVar("auditor_capture", default=None)


def _capture_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, sliding_window=None,
                       softcap=None, **kwargs):
    """AttentionInterface entry: record q/k/v (post norm+rotary) and return the attention output."""
    rec = _ACTIVE.get()
    if kwargs.get("s_aux") is not None or kwargs.get("sinks") is not None:
        raise UnsupportedArchitecture("attention sinks are not supported by the attribution engine")
    if query.shape[0] != 1:
        raise ValueError("capture runs one sequence at a time (batch size 1)")
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    window = sliding_window if sliding_window is not None else None
    params = AttnParams(float(scaling), None if softcap is None else float(softcap),
                        None if window is None else int(window))
    if rec is not None:
        layer = rec.layer_of.get(id(module))
        if layer is None:
            raise RuntimeError("attention call from a module the adapter does not know")
        n, K = query.shape[2], key.shape[2]  # K > n: a prefix's keys come first (extension)
        rec.slots["queries"][layer] = rec.keep(query[0])
        rec.slots["keys"][layer] = rec.keep(key[0, :, K - n:])
        rec.slots["values"][layer] = rec.keep(value[0, :, K - n:])
        rec.slots["params"][layer] = params
        if rec.store_attention:
            rows = torch.arange(K - n, K, device=query.device)
            rec.slots["attn"][layer] = attention_rows(query[0], key[0], rows, params)
    return _attend(query, key, value, params), None


def _register() -> None:
    from transformers import AttentionInterface

    if CAPTURE_IMPL not in AttentionInterface._global_mapping:
        AttentionInterface.register(CAPTURE_IMPL, _capture_attention)


def _first_tensor(args, kwargs, name: str = "hidden_states") -> torch.Tensor:
    if args:
        return args[0]
    return kwargs[name]


def _output_tensor(output) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


def as_input_ids(input_ids) -> torch.Tensor:
    """Accept list[int], a 1-D tensor or a [1, N] tensor; return a 1-D long CPU tensor."""
    ids = torch.as_tensor(input_ids, dtype=torch.long).detach().cpu()
    if ids.dim() == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.dim() != 1 or ids.numel() == 0:
        raise ValueError(f"input_ids must be a non-empty 1-D sequence of token ids, got shape {tuple(ids.shape)}")
    return ids


def model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover
        return torch.device("cpu")


def _record_forward(model, adapter: Adapter, ids: torch.Tensor, cache: StateCache, store_attention: bool,
                    past=None, offset: int = 0) -> dict[str, list[Any]]:
    """Run the decoder over `ids` (positions offset..offset+n-1, after the KV cache `past` if
    any) with hooks and the capture attention on; return the recorded per-layer slots."""
    rec = _Recorder(cache, adapter, store_attention)
    _register()
    handles = []
    L = adapter.n_layers
    dtype = cache.dtype

    def pre_layer(l):
        def hook(module, args, kwargs):
            rec.slots["resid"][l] = rec.keep(_first_tensor(args, kwargs)[0])
        return hook

    def post_last(module, args, kwargs, output):
        rec.slots["resid"][L] = rec.keep(_output_tensor(output)[0])

    def pre_mid(l):
        def hook(module, args, kwargs):
            rec.slots["mid"][l] = rec.keep(_first_tensor(args, kwargs)[0])
        return hook

    def pre_out_norm(l):
        eps = adapter.out_norm_eps(l)

        def hook(module, args, kwargs):
            a = _first_tensor(args, kwargs)[0].float()
            rec.slots["out_scale"][l] = torch.rsqrt(a.pow(2).mean(-1) + eps).to(dtype)
        return hook

    for l, layer in enumerate(adapter.layers):
        handles.append(layer.register_forward_pre_hook(pre_layer(l), with_kwargs=True))
        handles.append(adapter.mid_modules[l].register_forward_pre_hook(pre_mid(l), with_kwargs=True))
        if adapter.out_norms is not None:
            handles.append(adapter.out_norms[l].register_forward_pre_hook(pre_out_norm(l), with_kwargs=True))
    handles.append(adapter.layers[-1].register_forward_hook(post_last, with_kwargs=True))

    configs = [m.config for m in adapter.attn_modules if hasattr(m, "config")] + [model.config]
    token = _ACTIVE.set(rec)
    device = cache.device
    try:
        with attention_implementation(configs, CAPTURE_IMPL):
            if past is None:
                adapter.base_model()(input_ids=ids.unsqueeze(0).to(device), use_cache=False)
            else:
                pos = torch.arange(offset, offset + ids.numel(), device=device)[None]
                adapter.base_model()(input_ids=ids.unsqueeze(0).to(device), position_ids=pos, cache=past,
                                     use_cache=True)
    finally:
        _ACTIVE.reset(token)
        for h in handles:
            h.remove()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    s = rec.slots
    lost = [f"{name} of layer {i}" for name in ("resid", "mid", "queries", "keys", "values", "params")
            for i, v in enumerate(s[name]) if v is None]
    if lost:
        raise UnsupportedArchitecture(
            f"{type(model).__name__}: the forward pass did not expose " + ", ".join(lost[:6])
            + " (does its attention dispatch through transformers' AttentionInterface?)"
        )
    return s


@torch.no_grad()
def capture_full(
    model: "PreTrainedModel",
    input_ids,
    *,
    dtype: torch.dtype | str | None = None,
    store_attention: bool = False,
) -> StateCache:
    """Run one forward pass over all of `input_ids` and keep every state attribution needs (the
    public entry is `auditor.attribution.capture`, which also extends a cached prefix)."""
    ids = as_input_ids(input_ids)
    if isinstance(dtype, str):
        dtype = STORAGE_DTYPES[dtype]
    adapter = Adapter(model)
    dtype = dtype or torch.float32
    device = model_device(model)
    cache = StateCache(input_ids=ids, adapter=adapter, dtype=dtype, device=device)
    start = time.perf_counter()
    cpu_start = time.process_time()
    s = _record_forward(model, adapter, ids, cache, store_attention)
    cache.forward_seconds = time.perf_counter() - start
    cache.forward_cpu_seconds = time.process_time() - cpu_start
    cache.resid, cache.mid = s["resid"], s["mid"]
    cache.queries, cache.keys, cache.values, cache.params = s["queries"], s["keys"], s["values"], s["params"]
    if adapter.sandwich:
        cache.out_scale = s["out_scale"]
    if store_attention:
        cache.stored_attention = s["attn"]
    return cache


__all__ = ["StateCache", "capture_full", "STORAGE_DTYPES", "attention_rows", "AttnParams", "LAYER_STATE_NAMES", "as_input_ids"]
