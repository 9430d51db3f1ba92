"""Run attribution methods on task traces and collect the §8 metrics.

Pipeline: :func:`~auditor.evaluation.tasks.generate` examples →
:func:`~auditor.evaluation.traces.collect_traces` (model / gold traces) → :func:`prepare` (char
spans → token positions through the tokenizer's offsets) → :func:`evaluate_traces` (each method:
attribute, recovery, RISE/MAS deletion) → :class:`EvalReport` (summary table, JSON).
:func:`run_eval` does all of it and is what ``audit eval`` calls.

Choices the spec leaves open, written down:

- The input ``X`` is the user message's tokens (context + question + instruction); the chat
  template's own tokens (system prompt, role headers) are neither ranked nor deleted.
- Every method's scores are read on ``X`` only (``token_scores[X]``), which is the paper's
  post-processing for baselines (Appendix D.1: drop scores on R and O, renormalise over X; the
  metrics are scale-free in the ranking and MAS renormalises the mass).
- FlashTrace runs once per requested hop count; baselines run with ``hops=0`` (direct).
- The neutral token for deletion is the single-space token when the tokenizer has one, else the
  pad token (if distinct from end-of-turn), else ``<unk>``.
- Leave-one-out removes one segment at a time: every sentence, needle / assignment statement and
  the question (the paper's sentence-level perturbation, Appendix D.2).
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import torch

from auditor.evaluation import metrics as M
from auditor.evaluation.tasks import TaskExample, expand_tasks, generate
from auditor.evaluation.traces import Trace, collect_traces, render_prompt

#: Methods `audit eval` knows how to run (the engine's registry may have more).
DEFAULT_METHODS: tuple[str, ...] = ("flashtrace", "ifr-token", "loo", "attention")
DEFAULT_HOPS: tuple[int, ...] = (0, 1, 2)


class ProgressHook(Protocol):
    """What the runner reports progress to (the CLI passes a rich progress bar)."""

    def stage(self, description: str, total: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class _NoProgress:
    def stage(self, description: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


@dataclass(frozen=True)
class MethodSpec:
    """One row label of the comparison: an engine method at a hop count."""

    method: str
    hops: int = 0

    @property
    def label(self) -> str:
        return f"{self.method}-h{self.hops}" if self.method == "flashtrace" else self.method


def method_specs(methods: Sequence[str], hops: Sequence[int]) -> list[MethodSpec]:
    """FlashTrace once per hop count, every other method once (direct, hops 0)."""
    out: list[MethodSpec] = []
    for m in methods:
        specs = [MethodSpec(m, h) for h in hops] if m == "flashtrace" else [MethodSpec(m, 0)]
        for s in specs:
            if s not in out:
                out.append(s)
    return out


@dataclass
class Prepared:
    """A trace laid out as one token sequence with its X / R / O positions and gold tokens."""

    trace: Trace
    input_ids: torch.Tensor  # [N]
    inputs: list[int]  # positions of X (user message tokens)
    reasoning: list[int]  # positions of R
    output: list[int]  # positions of O
    gold: list[bool]  # over `inputs`: token overlaps a gold char span
    spans: list[tuple[int, int]]  # half-open token spans of the input segments (for leave-one-out)

    @property
    def generated(self) -> list[int]:
        return self.reasoning + self.output


def _overlaps(a: int, b: int, s: int, e: int) -> bool:
    return a < e and b > s and b > a


def prepare(tokenizer, trace: Trace) -> Prepared:
    """Map the example's character spans to token positions via the tokenizer's offsets."""
    ex: TaskExample = trace.example
    rendered, start = render_prompt(tokenizer, ex.prompt)
    enc = tokenizer(rendered, add_special_tokens=False, return_offsets_mapping=True)
    prompt_ids = list(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    end = start + len(ex.prompt)
    inputs = [i for i, (a, b) in enumerate(offsets) if _overlaps(a, b, start, end)]
    if not inputs:
        raise ValueError(f"{ex.uid}: no token of the user message found in the rendered prompt")
    gold_chars = [(a + start, b + start) for a, b in ex.gold_spans]
    gold = [any(_overlaps(*offsets[i], s, e) for s, e in gold_chars) for i in inputs]
    # Each input token belongs to the first segment it overlaps; spans are contiguous runs.
    seg_chars = [(a + start, b + start) for a, b, _ in ex.segments]
    owner: dict[int, int] = {}
    for i in inputs:
        for k, (s, e) in enumerate(seg_chars):
            if _overlaps(*offsets[i], s, e):
                owner[i] = k
                break
    spans: list[tuple[int, int]] = []
    for k in range(len(seg_chars)):
        pos = [i for i, o in owner.items() if o == k]
        if pos:
            spans.append((min(pos), max(pos) + 1))
    spans.sort()
    n_prompt = len(prompt_ids)
    reasoning = list(range(n_prompt, n_prompt + len(trace.reasoning_ids)))
    output = list(range(reasoning[-1] + 1 if reasoning else n_prompt,
                        n_prompt + len(trace.reasoning_ids) + len(trace.output_ids)))
    ids = torch.tensor(prompt_ids + list(trace.reasoning_ids) + list(trace.output_ids), dtype=torch.long)
    return Prepared(trace, ids, inputs, reasoning, output, gold, spans)


def neutral_token_id(tokenizer) -> int:
    """The token deletion puts in place of removed inputs (see the module docstring)."""
    space = tokenizer(" ", add_special_tokens=False)["input_ids"]
    if len(space) == 1:
        return int(space[0])
    pad, eos = getattr(tokenizer, "pad_token_id", None), getattr(tokenizer, "eos_token_id", None)
    if pad is not None and pad != eos:
        return int(pad)
    unk = getattr(tokenizer, "unk_token_id", None)
    return int(unk if unk is not None else 0)


@dataclass
class EvalRecord:
    """One (trace, method) measurement."""

    task: str
    uid: str
    variant: str
    method: str  # row label, e.g. "flashtrace-h1"
    engine_method: str
    hops: int
    recovery: float
    rise: float
    mas: float
    seconds: float  # wall-clock time of the attribution call
    n_tokens: int
    n_inputs: int
    n_reasoning: int
    n_output: int
    n_gold: int
    cpu_seconds: float = float("nan")  # CPU time of this process (all threads) for the call
    flow_ratios: list[float] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    rise_curve: list[float] = field(default_factory=list)
    mas_curve: list[float] = field(default_factory=list)
    error: str | None = None


def _mean(values: Sequence[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.fmean(vals) if vals else float("nan")


def _median(values: Sequence[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(vals) if vals else float("nan")


@dataclass
class SummaryRow:
    task: str  # a task name, or "mean" (average of the task means)
    variant: str
    method: str
    n: int
    recovery: float
    rise: float
    mas: float
    seconds: float
    cpu_seconds: float = float("nan")
    nan_deletion: int = 0  # traces whose deletion curve was undefined


@dataclass
class EvalReport:
    settings: dict[str, Any]
    records: list[EvalRecord]
    generation: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> list[SummaryRow]:
        """Means per (task, variant, method), then a "mean" row per (variant, method) averaging
        the task means (only for variants that span two tasks or more)."""
        groups: dict[tuple[str, str, str], list[EvalRecord]] = {}
        for r in self.records:
            if r.error is None:
                groups.setdefault((r.task, r.variant, r.method), []).append(r)
        rows = [
            SummaryRow(
                task=t, variant=v, method=m, n=len(rs),
                recovery=_mean([r.recovery for r in rs]), rise=_mean([r.rise for r in rs]),
                mas=_mean([r.mas for r in rs]), seconds=_mean([r.seconds for r in rs]),
                cpu_seconds=_mean([r.cpu_seconds for r in rs]),
                nan_deletion=sum(1 for r in rs if math.isnan(r.rise)),
            )
            for (t, v, m), rs in groups.items()
        ]
        per_task = list(rows)
        for v in dict.fromkeys(r.variant for r in per_task):
            if len({r.task for r in per_task if r.variant == v}) < 2:
                continue  # a mean over one task would only repeat its rows
            for m in dict.fromkeys(r.method for r in per_task):
                sel = [r for r in per_task if r.variant == v and r.method == m]
                if sel:
                    rows.append(SummaryRow(
                        task="mean", variant=v, method=m, n=sum(r.n for r in sel),
                        recovery=_mean([r.recovery for r in sel]), rise=_mean([r.rise for r in sel]),
                        mas=_mean([r.mas for r in sel]), seconds=_mean([r.seconds for r in sel]),
                        cpu_seconds=_mean([r.cpu_seconds for r in sel]),
                        nan_deletion=sum(r.nan_deletion for r in sel),
                    ))
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "generation": self.generation,
            "summary": [asdict(r) for r in self.summary()],
            "records": [asdict(r) for r in self.records],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalReport":
        """Rebuild a report from :meth:`to_dict` output (nulls read back as NaN)."""
        nan_fields = ("recovery", "rise", "mas", "seconds", "cpu_seconds")
        records = []
        for r in data.get("records", []):
            r = dict(r)
            for k in nan_fields:
                if r.get(k) is None:
                    r[k] = float("nan")
            records.append(EvalRecord(**r))
        return cls(settings=dict(data.get("settings", {})), records=records,
                   generation=dict(data.get("generation", {})))

    def save_json(self, path: str | Path) -> Path:
        import json

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_json_safe(self.to_dict()), indent=1) + "\n")
        return path


def _json_safe(obj: Any) -> Any:
    """NaN/inf become null so the JSON is standard."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


AttributeFn = Callable[..., Any]


def _default_attribute() -> AttributeFn:
    from auditor.attribution import attribute

    return attribute


def attribute_prepared(model, prep: Prepared, spec: MethodSpec, attribute: AttributeFn | None = None,
                       neutral_id: int | None = None):
    """Run one engine method on a prepared trace: (scores over X, flow ratios, wall s, CPU s).

    Leave-one-out replaces a segment with the same neutral token the deletion test uses.
    """
    from auditor.attribution import Target

    attribute = attribute or _default_attribute()
    target = Target(output=prep.output, reasoning=prep.reasoning, inputs=prep.inputs, spans=prep.spans)
    options: dict[str, Any] = {}
    if spec.method == "loo" and neutral_id is not None:
        options["replacement_id"] = neutral_id
    t0, c0 = time.perf_counter(), time.process_time()
    result = attribute(model, prep.input_ids, target, method=spec.method, hops=spec.hops, **options)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    scores = torch.as_tensor(result.token_scores, dtype=torch.float64).flatten()
    x = torch.tensor(prep.inputs, dtype=torch.long)
    flows = [float(f) for f in (getattr(result, "flow_ratios", None) or [])]
    return scores[x], flows, seconds, cpu


def evaluate_traces(
    model,
    tokenizer,
    traces: Sequence[Trace],
    specs: Sequence[MethodSpec],
    *,
    steps: int = M.STEPS,
    batch_size: int = 4,
    attribute: AttributeFn | None = None,
    progress: ProgressHook | None = None,
) -> list[EvalRecord]:
    """Attribute every trace with every method and measure recovery, RISE, MAS and time."""
    progress = progress or _NoProgress()
    baseline = neutral_token_id(tokenizer)
    records: list[EvalRecord] = []
    progress.stage("attributing + deletion tests", len(traces) * len(specs))
    for tr in traces:
        prep = prepare(tokenizer, tr)
        logprob = M.model_logprob_fn(model, prep.generated)
        full = M.perturbed_batch(prep.input_ids, prep.inputs, torch.zeros(len(prep.inputs)),
                                 [0, len(prep.inputs)], baseline)
        endpoints = tuple(float(v) for v in logprob(full))
        for spec in specs:
            common = dict(
                task=tr.example.task, uid=tr.example.uid, variant=tr.variant, method=spec.label,
                engine_method=spec.method, hops=spec.hops, n_tokens=int(prep.input_ids.numel()),
                n_inputs=len(prep.inputs), n_reasoning=len(prep.reasoning), n_output=len(prep.output),
                n_gold=int(sum(prep.gold)),
            )
            try:
                scores, flows, seconds, cpu = attribute_prepared(model, prep, spec, attribute, baseline)
                rec = M.recovery_rate(scores, prep.gold)
                dt = M.deletion_test(logprob, prep.input_ids, prep.inputs, scores, baseline,
                                     steps=steps, batch_size=batch_size, endpoints=endpoints)
                records.append(EvalRecord(
                    **common, recovery=rec, rise=dt.rise, mas=dt.mas, seconds=seconds, cpu_seconds=cpu,
                    flow_ratios=flows, logprobs=dt.logprobs, rise_curve=dt.rise_curve, mas_curve=dt.mas_curve,
                ))
            except Exception as exc:  # noqa: BLE001 - one failing method must not sink the run
                records.append(EvalRecord(**common, recovery=float("nan"), rise=float("nan"),
                                          mas=float("nan"), seconds=float("nan"),
                                          error=f"{type(exc).__name__}: {exc}"))
            progress.advance()
    return records


def run_eval(
    task: Sequence[str] | str = ("all",),
    *,
    method: Sequence[str] = DEFAULT_METHODS,
    hops: Sequence[int] = DEFAULT_HOPS,
    n: int = 3,
    length: int = 512,
    seed: int = 0,
    variant: str = "auto",
    model: Any = None,
    tokenizer: Any = None,
    steps: int = M.STEPS,
    batch_size: int = 4,
    max_new_tokens: int = 96,
    attribute: AttributeFn | None = None,
    progress: ProgressHook | None = None,
) -> EvalReport:
    """Generate the task set, trace it, attribute with every method, and measure.

    ``model`` is a loaded model (then pass ``tokenizer`` too), a local model directory, or None
    for the embedded SmolLM2. ``variant``: ``auto`` (the model's trace when its answer is right,
    else the gold trace), ``model`` (only right model traces) or ``gold``.
    """
    progress = progress or _NoProgress()
    tasks = expand_tasks([task] if isinstance(task, str) else list(task))
    model_name = "custom"
    if model is None or isinstance(model, (str, Path)):
        from auditor.model_registry import EMBEDDED_NAME, load_model

        model_name = str(model) if model is not None else EMBEDDED_NAME
        model, tokenizer = load_model(model)
    elif tokenizer is None:
        raise ValueError("pass the tokenizer along with a loaded model")
    else:
        model_name = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
    specs = method_specs(method, hops)

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    records: list[EvalRecord] = []
    generation: dict[str, Any] = {}
    t_start = time.perf_counter()
    for name in tasks:
        examples = generate(name, n, length=length, seed=seed, count_tokens=count)
        if variant != "gold":
            progress.stage(f"{name}: generating traces", len(examples))
        traces, gen = collect_traces(model, tokenizer, examples, variant=variant,
                                     max_new_tokens=max_new_tokens,
                                     progress=progress.advance if variant != "gold" else None)
        gen["used"] = {v: sum(1 for t in traces if t.variant == v) for v in ("model", "gold")}
        generation[name] = gen
        if not traces:
            continue
        sub = _Prefixed(progress, name)
        records += evaluate_traces(model, tokenizer, traces, specs, steps=steps, batch_size=batch_size,
                                   attribute=attribute, progress=sub)
    settings = {
        "tasks": tasks, "methods": [s.label for s in specs], "hops": list(hops), "n": n,
        "length": length, "seed": seed, "variant": variant, "model": model_name, "steps": steps,
        "top_fraction": M.TOP_FRACTION, "neutral_token_id": neutral_token_id(tokenizer),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(), "machine": platform.machine(),
        "wall_seconds": round(time.perf_counter() - t_start, 1),
    }
    return EvalReport(settings=settings, records=records, generation=generation)


class _Prefixed:
    def __init__(self, inner: ProgressHook, prefix: str) -> None:
        self.inner, self.prefix = inner, prefix

    def stage(self, description: str, total: int) -> None:
        self.inner.stage(f"{self.prefix}: {description}", total)

    def advance(self, n: int = 1) -> None:
        self.inner.advance(n)
