"""Generators: deterministic, about the asked length, and gold spans that point at the needles /
the target chain's assignments; traces: answer checking and the gold variant."""

from __future__ import annotations

import re

import pytest

from auditor.evaluation import tasks as T
from auditor.evaluation.traces import answer_part, gold_trace, is_correct


def test_parse_task_names():
    assert T.parse_task("mq-q2") == T.TaskSpec("mq", queries=2)
    assert T.parse_task("MV_V4").name == "mv-v4"
    assert T.parse_task("vt-h2-c3") == T.TaskSpec("vt", hops=2, chains=3)
    assert T.parse_task("vth4c1").name == "vt-h4-c1"
    with pytest.raises(ValueError, match="mq-q<K>"):
        T.parse_task("niah")
    assert T.expand_tasks(["all"]) == list(T.DEFAULT_TASKS)
    assert T.expand_tasks(["mq-q2,vt-h1-c1", "mq-q2"]) == ["mq-q2", "vt-h1-c1"]


def test_deterministic_and_seeded():
    a = T.generate("vt-h2-c3", 2, length=300, seed=1)
    b = T.generate("vt-h2-c3", 2, length=300, seed=1)
    c = T.generate("vt-h2-c3", 2, length=300, seed=2)
    assert [e.prompt for e in a] == [e.prompt for e in b]
    assert [e.prompt for e in a] != [e.prompt for e in c]
    assert a[0].prompt != a[1].prompt


@pytest.mark.parametrize("length", [200, 600])
def test_length_is_respected(length):
    for name in ("mq-q2", "vt-h2-c3"):
        for ex in T.generate(name, 2, length=length):
            n = T.approx_tokens(ex.prompt)
            assert length * 0.8 <= n <= length * 1.05, (name, n)


def test_multi_query_gold_spans():
    for ex in T.generate("mq-q4", 3, length=400):
        texts = ex.gold_texts()
        assert len(texts) == 4
        keys, values = ex.meta["keys"], ex.meta["values"]
        for k, v in zip(keys, values):
            assert f"One of the special magic numbers for {k} is: {v}." in texts
            assert k in ex.prompt.split("\n\n")[-1]  # every key is asked for
        assert ex.answers == values
        assert len(re.findall(r"\d{7}", ex.prompt)) == 4  # numbers only in needles


def test_multi_value_gold_spans():
    for ex in T.generate("mv-v3", 2, length=400):
        key = ex.meta["keys"][0]
        assert sorted(ex.gold_texts()) == sorted(f"One of the special magic numbers for {key} is: {v}." for v in ex.answers)
        assert ex.gold_answer.split(", ") == [v for v in re.findall(r"\d{7}", ex.prompt)]  # order of appearance


def test_variable_tracking_gold_is_the_target_chain_only():
    for ex in T.generate("vt-h3-c2", 3, length=400):
        chains, values = ex.meta["chains"], ex.meta["values"]
        target = chains[0]
        want = [f"VAR {target[0]} = {values[0]}."] + [f"VAR {target[i]} = VAR {target[i - 1]}." for i in range(1, 4)]
        assert ex.gold_texts() == want  # in order of appearance = chain order
        distractor = chains[1]
        assert f"VAR {distractor[0]} = {values[1]}." in ex.prompt
        assert all(distractor[0] not in g for g in ex.gold_texts())
        assert ex.answers == target
        assert f"assigned the value {values[0]}" in ex.prompt


def test_segments_tile_the_sentences():
    ex = T.generate("mq-q2", 1, length=300)[0]
    kinds = [k for *_, k in ex.segments]
    assert kinds.count("gold") == 2 and kinds[-1] == "question"
    for a, b, _ in ex.segments:
        assert ex.prompt[a:b].strip() == ex.prompt[a:b]
    starts = [a for a, _, _ in ex.segments]
    assert starts == sorted(starts)


def test_answer_checking():
    ex = T.generate("mq-q2", 1, length=200)[0]
    v1, v2 = ex.answers
    assert is_correct(ex, answer_part(f"reasoning...\nAnswer: {v1} and {v2}"))
    assert not is_correct(ex, answer_part(f"Answer: {v1}"))
    assert not is_correct(ex, answer_part(f"Answer: {v1}9 {v2}"))  # no partial-number match
    assert not is_correct(ex, answer_part(f"{v1} {v2}"))  # no Answer: line
    vt = T.generate("vt-h1-c2", 1, length=200)[0]
    assert is_correct(vt, f" {', '.join(vt.answers)}")


def test_gold_trace_tokens():
    from auditor.testing import tiny_tokenizer

    tok = tiny_tokenizer()
    ex = T.generate("vt-h1-c1", 1, length=100)[0]
    tr = gold_trace(tok, ex)
    assert tr.variant == "gold" and tr.correct
    assert tr.output_text.startswith("Answer:")
    assert tok.decode(tr.output_ids).lower().startswith("answer :")


def test_cut_reasoning_stops_loops():
    from auditor.evaluation.traces import _cut_reasoning

    loop = "The numbers are:\n1. 5415842\n2. 5974661\n3. 5974661\n4. 5415842\n"
    assert loop[:_cut_reasoning(loop)] == "The numbers are:\n1. 5415842\n2. 5974661\n"
    partial = "Line one.\nLine two is cut mid"
    assert partial[:_cut_reasoning(partial)] == "Line one.\n"
    assert _cut_reasoning("no newline at all") == len("no newline at all")


def test_model_trace_and_auto_fallback_on_a_tiny_model():
    from auditor.evaluation.traces import collect_traces, model_trace
    from auditor.testing import tiny_model, tiny_tokenizer

    tok, model = tiny_tokenizer(), tiny_model("llama")
    ex = T.generate("mq-q1", 1, length=40)[0]
    tr = model_trace(model, tok, ex, max_new_tokens=6, answer_tokens=3)
    assert tr.variant == "model" and not tr.correct  # a random model does not find the needle
    assert tr.output_ids and tok.decode(tr.output_ids).lower().lstrip().startswith("answer")
    assert tr.info["answer_forced"]
    traces, stats = collect_traces(model, tok, [ex], variant="auto", max_new_tokens=6)
    assert [t.variant for t in traces] == ["gold"] and stats["generated"] == 1 and stats["right"] == 0
    traces, _ = collect_traces(model, tok, [ex], variant="model", max_new_tokens=6)
    assert traces == []
