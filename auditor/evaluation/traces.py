"""Reasoning traces for the task examples: the model's own short chain of thought, kept only when
the final answer is right (as the paper does, Appendix E.4), or the generator's gold trace.

A trace is a token sequence ``prompt | reasoning | output``:

- *prompt*: the chat-rendered user message (ChatML for SmolLM2) up to and including the
  assistant header; the user message's tokens are the input ``X``;
- *reasoning* ``R``: the generated tokens before the final ``Answer:`` line;
- *output* ``O``: the ``Answer: …`` line (without the end-of-turn token).

Variants: ``"model"`` (greedy generation by the evaluated model, answer checked) and ``"gold"``
(the generator's reasoning and answer, teacher-forced: what a right answer looks like when the
small model cannot produce one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import torch

from auditor.evaluation.tasks import ANSWER_MARKER, TaskExample

VARIANTS = ("model", "gold")


@dataclass
class Trace:
    """One example with its reasoning and output, as token ids after the rendered prompt."""

    example: TaskExample
    variant: str  # "model" or "gold"
    reasoning_ids: list[int]
    output_ids: list[int]
    reasoning_text: str
    output_text: str
    correct: bool
    info: dict[str, Any] = field(default_factory=dict)


def render_prompt(tokenizer, prompt: str) -> tuple[str, int]:
    """The chat-rendered user turn (with the assistant header) and where ``prompt`` starts in it.

    Uses the tokenizer's chat template when it has one, else a plain ``User:/Assistant:`` frame.
    """
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    else:
        text = f"User: {prompt}\nAssistant: "
    start = text.rfind(prompt)
    if start < 0:
        raise ValueError("the chat template altered the user message; cannot locate its characters")
    return text, start


def answer_part(text: str) -> str | None:
    """The content after the last ``Answer:`` marker (case-insensitive), or None."""
    idx = text.lower().rfind(ANSWER_MARKER.lower())
    if idx < 0:
        return None
    return text[idx + len(ANSWER_MARKER):]


def is_correct(example: TaskExample, answer_text: str | None) -> bool:
    """Right when the answer contains every gold answer as a whole word."""
    if not answer_text:
        return False
    return all(re.search(rf"(?<![\w-]){re.escape(a)}(?![\w-])", answer_text) for a in example.answers)


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def gold_trace(tokenizer, example: TaskExample) -> Trace:
    """The generator's reasoning and answer, tokenised (teacher-forced, always right)."""
    reasoning = example.gold_reasoning + "\n"
    output = f"{ANSWER_MARKER} {example.gold_answer}"
    return Trace(
        example=example,
        variant="gold",
        reasoning_ids=_ids(tokenizer, reasoning),
        output_ids=_ids(tokenizer, output),
        reasoning_text=reasoning,
        output_text=output,
        correct=True,
    )


def _stop_ids(tokenizer) -> list[int]:
    out = []
    for tok in (getattr(tokenizer, "eos_token", None), "<|im_end|>", "<|endoftext|>"):
        if tok:
            tid = tokenizer.convert_tokens_to_ids(tok)
            if isinstance(tid, int) and tid >= 0 and tid != getattr(tokenizer, "unk_token_id", None):
                out.append(tid)
    return sorted(set(out))


def _token_index_at(tokenizer, ids: list[int], char: int) -> int:
    """Index of the token whose decoded text covers character ``char`` of ``decode(ids)``."""
    for i in range(len(ids) + 1):
        if len(tokenizer.decode(ids[:i], skip_special_tokens=False)) > char:
            return max(0, i - 1)
    return len(ids)


def _cut_reasoning(text: str) -> int:
    """Where a free-running reasoning should end: before the first line that repeats an earlier
    line (small models loop), else after the last complete line, else the whole text."""
    seen: set[str] = set()
    pos = 0
    for line in text.splitlines(keepends=True):
        key = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip()  # ignore list markers
        if key and key in seen:
            return pos
        if key:
            seen.add(key)
        pos += len(line)
    last_nl = text.rfind("\n")
    return last_nl + 1 if last_nl > 0 else len(text)


def _greedy(model, ids: list[int], max_new_tokens: int, stops: list[int]) -> list[int]:
    device = next(model.parameters()).device
    t = torch.tensor([ids], device=device)
    gen = model.generate(
        t,
        attention_mask=torch.ones_like(t),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=stops or None,
        pad_token_id=stops[0] if stops else None,
    )[0, len(ids):].tolist()
    for k, tok in enumerate(gen):
        if tok in stops:
            return gen[:k]
    return gen


@torch.no_grad()
def model_trace(model, tokenizer, example: TaskExample, *, max_new_tokens: int = 96,
                answer_tokens: int = 32) -> Trace:
    """Greedy generation by ``model``, checked against the gold answers.

    1. The model reasons freely (up to ``max_new_tokens``). If it writes ``Answer:`` itself, the
       output starts at the token where the marker starts.
    2. Otherwise the reasoning is cut before its first repeated line (or after its last complete
       line), ``\\nAnswer:`` is appended and the model writes the answer (up to
       ``answer_tokens``, to the end of the line). The output is the marker and that answer.

    The end-of-turn token is never part of the output. The trace is right when the answer
    contains every gold answer (:func:`is_correct`).
    """
    rendered, _ = render_prompt(tokenizer, example.prompt)
    prompt_ids = _ids(tokenizer, rendered)
    stops = _stop_ids(tokenizer)
    gen = _greedy(model, prompt_ids, max_new_tokens, stops)
    text = tokenizer.decode(gen, skip_special_tokens=False)
    marker_at = text.lower().rfind(ANSWER_MARKER.lower())
    forced = marker_at < 0
    if not forced:
        split = _token_index_at(tokenizer, gen, marker_at)
        reasoning_ids, output_ids = gen[:split], gen[split:]
        nl = tokenizer.decode(output_ids, skip_special_tokens=False).find("\n", len(ANSWER_MARKER) + 2)
        if nl > 0:  # keep the answer line only
            output_ids = output_ids[:_token_index_at(tokenizer, output_ids, nl)]
    else:
        cut = _cut_reasoning(text)
        reasoning_ids = gen[:_token_index_at(tokenizer, gen, cut)] if cut < len(text) else gen
        reasoning_text = tokenizer.decode(reasoning_ids, skip_special_tokens=False)
        marker = ANSWER_MARKER if reasoning_text.endswith("\n") or not reasoning_text else "\n" + ANSWER_MARKER
        marker_ids = _ids(tokenizer, marker)
        answer = _greedy(model, prompt_ids + reasoning_ids + marker_ids, answer_tokens, stops)
        answer_text = tokenizer.decode(answer, skip_special_tokens=False)
        nl = answer_text.find("\n", 1)
        if nl > 0:
            answer = answer[:_token_index_at(tokenizer, answer, nl)]
        output_ids = marker_ids + answer
    output_text = tokenizer.decode(output_ids, skip_special_tokens=False)
    return Trace(
        example=example,
        variant="model",
        reasoning_ids=reasoning_ids,
        output_ids=output_ids,
        reasoning_text=tokenizer.decode(reasoning_ids, skip_special_tokens=False),
        output_text=output_text,
        correct=bool(output_ids) and is_correct(example, answer_part(output_text)),
        info={"generated": text, "answer_forced": forced},
    )


def collect_traces(
    model,
    tokenizer,
    examples: list[TaskExample],
    *,
    variant: str = "auto",
    max_new_tokens: int = 96,
    progress=None,
) -> tuple[list[Trace], dict[str, Any]]:
    """Traces to evaluate, and a summary of what generation gave.

    ``variant``: ``"model"`` keeps only right model answers; ``"gold"`` uses gold traces;
    ``"auto"`` uses the model's trace where it is right and the gold trace elsewhere (each trace
    says which it is). ``progress(advance)`` is called once per example.
    """
    if variant not in ("auto", *VARIANTS):
        raise ValueError(f"variant must be one of auto, {', '.join(VARIANTS)}; got {variant!r}")
    traces: list[Trace] = []
    generated = right = 0
    failures: list[dict[str, Any]] = []
    for ex in examples:
        if variant == "gold":
            traces.append(gold_trace(tokenizer, ex))
        else:
            tr = model_trace(model, tokenizer, ex, max_new_tokens=max_new_tokens)
            generated += 1
            if tr.correct and tr.reasoning_ids:
                right += 1
                traces.append(tr)
            else:
                failures.append({"uid": ex.uid, "generated": tr.info.get("generated", "")[:400],
                                 "output": tr.output_text[:200]})
                if variant == "auto":
                    traces.append(gold_trace(tokenizer, ex))
        if progress:
            progress(1)
    return traces, {"generated": generated, "right": right, "failures": failures}
