"""Per-argument attribution: each argument value (and an edit's path/search/replace) is located in
the rendered call and explained as its own target from the same forward pass."""

from __future__ import annotations

import json
import math

import pytest

from auditor.attribution import Target, attribute
from auditor.audit import Auditor
from auditor.segments.arguments import argument_spans, edit_part_chars, tool_argument_chars
from auditor.trajectory import Action, ActionKind, CodeEdit

from helpers.replay import agent_trajectory


def test_tool_arguments_are_found_by_key_without_quotes():
    args = {"to": "bob@acme.example", "limit": 3, "cc": ["a@x.org"], "body": "to: bob@acme.example \u00e9"}
    for text in (json.dumps(args), json.dumps(args, ensure_ascii=False), json.dumps(args, indent=2)):
        spans = {s.name: text[s.char_start:s.char_end] for s in tool_argument_chars(text, args)}
        assert spans["to"] == "bob@acme.example"
        assert spans["limit"] == "3"
        assert json.loads(spans["cc"]) == ["a@x.org"]  # however the template indents it
        assert json.loads(f'"{spans["body"]}"') == args["body"]  # escaped or not, the value's own chars


def test_a_value_elsewhere_in_the_text_is_not_taken_for_the_argument():
    text = 'note "bob@acme.example" {"name": "send", "arguments": {"to": "bob@acme.example"}}'
    (span,) = tool_argument_chars(text, {"to": "bob@acme.example"})
    assert span.char_start == text.rindex("bob@acme.example")


def test_an_argument_the_template_rewrote_is_left_out():
    assert tool_argument_chars('{"to": "BOB"}', {"to": "bob", "x": 1}) == []


def test_edit_parts():
    text = "app/util.py\n```python\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n```\n"
    action = Action(id="e", kind=ActionKind.code_edit, message_index=0, step=0,
                    edit=CodeEdit(path="app/util.py", search="    return a - b\n", replace="    return a + b\n"))
    parts = {s.name: text[s.char_start:s.char_end] for s in edit_part_chars(text, action)}
    assert parts == {"path": "app/util.py", "search": "return a - b", "replace": "return a + b"}


@pytest.fixture(scope="module")
def tiny():
    from auditor.testing import tiny_model, tiny_tokenizer

    return tiny_model("llama"), tiny_tokenizer()


@pytest.fixture(scope="module")
def audited(tiny):
    return Auditor(tiny, hops=1).audit(agent_trajectory(tools=False))


def test_every_argument_of_every_call_is_explained(audited):
    for act in audited.actions:
        a = act.action
        if a.kind is ActionKind.tool_call:
            assert [g.name for g in act.arguments] == list(a.arguments)
        else:
            assert act.arguments == []
        for g in act.arguments:
            assert act.output_start <= g.token_start < g.token_end <= act.output_end
            assert [d.rank for d in g.drivers] == list(range(1, len(g.drivers) + 1))
            assert {d.segment_id for d in g.drivers} == {d.segment_id for d in act.drivers}
            assert math.isclose(sum(d.share for d in g.drivers), 1.0, rel_tol=1e-5)
            assert len(g.token_scores) == g.token_start  # compact: the context and the call before the value


def test_an_argument_equals_its_own_single_target_run(tiny, audited):
    """The argument's drivers are exactly what attributing its value alone gives, with the call's
    earlier tokens as reasoning: same forward, no cross-talk between targets."""
    model, _ = tiny
    act = next(x for x in audited.actions if x.action.tool_name == "send_email")
    g = act.argument("to")
    assert g is not None
    before = [s for s in audited.segments if s.token_end <= act.output_start and s.kind.value != "action"]
    inputs = [p for s in before if s.kind.group == "input" for p in range(s.token_start, s.token_end)]
    inter = [p for s in audited.segments if s.token_end <= act.output_start and s.kind.group != "input"
             for p in range(s.token_start, s.token_end)]
    rendered = Auditor(tiny, hops=1).render(audited.trajectory)
    res = attribute(model, rendered.input_ids, Target(output=range(g.token_start, g.token_end),
                    reasoning=inter + list(range(act.output_start, g.token_start)), inputs=inputs), hops=1)
    for d in g.drivers:
        seg = audited.segment(d.segment_id)
        assert math.isclose(d.score, float(res.token_scores[seg.token_start:seg.token_end].sum()),
                            rel_tol=1e-4, abs_tol=1e-7)
    for x, y in zip(g.token_scores, res.token_scores[:g.token_start].tolist(), strict=True):
        assert math.isclose(x, y, rel_tol=1e-3, abs_tol=1e-6)  # compacted to 5 digits, batched vs alone


def test_arguments_can_be_turned_off(tiny):
    audit = Auditor(tiny, hops=1, arguments=False).audit(agent_trajectory(tools=False))
    assert all(act.arguments == [] for act in audit.actions)
    assert audit.run.settings["arguments"] is False


def test_argument_spans_of_a_rendered_call(tiny, audited):
    rendered = Auditor(tiny).render(audited.trajectory)
    act = next(x for x in audited.actions if x.action.tool_name == "send_email")
    spans = argument_spans(act.action, rendered.text, rendered.offsets, act.output_start, act.output_end)
    assert [(s.name, s.token_start, s.token_end) for s in spans] == [
        (g.name, g.token_start, g.token_end) for g in act.arguments]
    for s in spans:
        assert rendered.text[s.char_start:s.char_end] == str(act.action.arguments[s.name])


def test_arguments_are_found_when_the_template_sorts_keys():
    """The renderer places calls written with sorted keys (``tojson(sort_keys=True)``); their
    arguments are found too, each at its own top-level key, never inside a nested value."""
    args = {"to": "bob@acme.example", "cc": "carol@acme.example", "meta": {"to": "bob@acme.example", "n": 15},
            "n": 5}
    for text in (json.dumps(args, sort_keys=True), json.dumps(args, sort_keys=True, indent=4),
                 'send_email {"name": "send_email", "arguments": ' + json.dumps(args, sort_keys=True) + "}"):
        spans = {s.name: s for s in tool_argument_chars(text, args)}
        assert list(spans) == list(args)  # all of them, in argument order
        top = text.rindex('"to": ') + len('"to": "')  # the top-level key comes after "meta" when sorted
        assert (spans["to"].char_start, text[spans["to"].char_start:spans["to"].char_end]) == (top, "bob@acme.example")
        assert text[spans["cc"].char_start:spans["cc"].char_end] == "carol@acme.example"
        assert json.loads(text[spans["meta"].char_start:spans["meta"].char_end]) == args["meta"]
        assert spans["n"].char_start == text.rindex('"n": 5') + len('"n": ')
        assert text[spans["n"].char_start:spans["n"].char_end] == "5"


def test_a_plain_key_is_not_matched_inside_a_longer_name_or_value():
    """Templates that write parameters as text: ``to`` is not the tail of ``reply_to``, and the
    value 5 is not the tail of 15."""
    text = "<parameter=reply_to>\nbob\n</parameter>\n<parameter=to>\nbob\n</parameter>"
    (span,) = [s for s in tool_argument_chars(text, {"to": "bob", "reply_to": "bob"}) if s.name == "to"]
    assert span.char_start == text.rindex("bob")
    text = "<parameter=pin>15</parameter><parameter=n>5</parameter>"
    (span,) = [s for s in tool_argument_chars(text, {"n": 5, "pin": 15}) if s.name == "n"]
    assert (span.char_start, text[span.char_start:span.char_end]) == (text.rindex("5"), "5")


def test_arguments_of_a_call_rendered_with_sorted_keys(tiny):
    """End to end: a ChatML template that writes ``arguments | tojson(sort_keys=True)``."""
    import copy

    from helpers.replay import TEMPLATES

    model, tok = tiny
    tok = copy.copy(tok)
    tok.chat_template = TEMPLATES["chatml"].replace("(f.arguments | tojson)", "(f.arguments | tojson(sort_keys=True))")
    traj = agent_trajectory(tools=False)
    rendered = Auditor((model, tok)).render(traj)
    calls = [a for a in rendered.trajectory.actions if a.kind is ActionKind.tool_call and len(a.arguments) > 1]
    assert calls and list(calls[0].arguments) != sorted(calls[0].arguments)  # the sort changes the order
    for a in calls:
        seg = rendered.action_segment(a.id)
        spans = argument_spans(a, rendered.text, rendered.offsets, seg.token_start, seg.token_end)
        assert [s.name for s in spans] == list(a.arguments)
        for s in spans:
            assert rendered.text[s.char_start:s.char_end] == str(a.arguments[s.name])
