"""Rendering through four chat templates: every segment maps to exactly the tokens carrying its
text; what a template drops is reported, never guessed."""

from __future__ import annotations

import copy
import json

import pytest

from auditor.segments import ContextTooLong, render_trajectory, segment_trajectory, template_caps
from auditor.segments.placement import tool_definition_patterns
from auditor.trajectory import SegmentKind, Trajectory
from auditor.actions import with_actions

from helpers.replay import TEMPLATES, TOOLS, agent_trajectory, call


def _variants(text: str) -> list[str]:
    return [text, json.dumps(text, ensure_ascii=False)[1:-1], json.dumps(text)[1:-1]]


def assert_exact(rendered, traj: Trajectory) -> None:
    """Each placed segment's tokens run from the token holding its first character to the token
    holding its last, and token ranges never overlap."""
    offsets, text = rendered.offsets, rendered.text
    end = 0
    for seg in rendered.segments:
        ts, te = seg.token_start, seg.token_end
        assert ts is not None and te is not None and ts < te, seg.id
        assert ts >= end, f"{seg.id} overlaps the segment before it"
        end = te
        lo, hi = offsets[ts][0], offsets[te - 1][1]
        span = text[lo:hi]
        if seg.provenance.field == "tool_call":
            msg = traj.messages[seg.provenance.message_index]
            tc = next(c for c in msg.tool_calls if c.id == seg.provenance.tool_call_id)
            args = [json.dumps(tc.arguments, ensure_ascii=False), json.dumps(tc.arguments)]
            first_char, n = lo + span.index(tc.name), None
            last = max(span.rfind(a) + len(a) for a in args if a in span)
            assert any(a in span for a in args), (seg.id, span)
            last_char = lo + last - 1
        elif seg.provenance.field == "tool_definition":
            tool = traj.tool(seg.provenance.tool_name)
            hit = next((m for g in tool_definition_patterns(tool) for p in g if (m := p.search(span))), None)
            assert hit is not None, (seg.id, seg.text, span)
            first_char, last_char = lo + hit.start(), lo + hit.end() - 1
        else:
            hit = next((v for v in _variants(seg.text) if v in span), None)
            assert hit is not None, (seg.id, seg.text, span)
            first_char = lo + span.index(hit)
            last_char = first_char + len(hit) - 1
        assert offsets[ts][0] <= first_char < offsets[ts][1], (seg.id, "first token does not hold the first char")
        assert offsets[te - 1][0] <= last_char < offsets[te - 1][1], (seg.id, "last token does not hold the last char")


@pytest.fixture(params=sorted(TEMPLATES))
def templated(request, replay_tokenizer):
    tok = copy.copy(replay_tokenizer)
    tok.chat_template = TEMPLATES[request.param]
    return request.param, tok


def test_exact_token_map_across_templates(templated):
    name, tok = templated
    traj = agent_trajectory()
    rendered = render_trajectory(traj, tok)
    assert_exact(rendered, traj)
    placed = {s.id for s in rendered.segments}
    unplaced = {u.split(" ")[0] for u in rendered.unplaced}
    assert placed | unplaced == {s.id for s in segment_trajectory(traj)}
    assert not placed & unplaced
    if name == "llama3":
        # Llama 3.1 writes only the call for a tool-calling turn: its text and reasoning are gone
        calling = {i for i, m in enumerate(traj.messages) if m.tool_calls}
        assert unplaced == {s.id for s in segment_trajectory(traj)
                            if s.provenance.message_index in calling and s.provenance.field != "tool_call"}
        assert len(unplaced) == 3
    else:
        assert unplaced == set()
    # every action is placed in every template
    assert {s.action_id for s in rendered.segments if s.kind is SegmentKind.action} == {a.id for a in traj.actions}


def test_template_features_used_natively(templated):
    name, tok = templated
    caps = template_caps(tok)
    rendered = render_trajectory(agent_trajectory(), tok)
    if name == "qwen3":
        assert caps.reasoning and caps.tool_calls and caps.tools
        assert "<think>\nI should read the inbox first.\n</think>" in rendered.text
        assert rendered.notes == []
    if name == "llama3":
        assert caps.tool_calls and not caps.reasoning
        assert '"parameters": {"limit": 3}' in rendered.text  # the template's own call format
        assert "\\nSubject: Lunch\\n" in rendered.text  # tool results JSON-escaped by tojson
    if name == "gemma":
        assert not (caps.tools or caps.tool_calls or caps.tool_role)
        assert any("tool calls written into the assistant text" in n for n in rendered.notes)
        assert "<tool_response>" in rendered.text
    if name == "chatml":
        assert caps.tools and caps.tool_calls and not caps.reasoning


def test_qwen3_drops_earlier_turn_reasoning_and_says_so(replay_tokenizer):
    tok = copy.copy(replay_tokenizer)
    tok.chat_template = TEMPLATES["qwen3"]
    traj = with_actions(Trajectory.from_openai_messages("multi", [
        {"role": "user", "content": "Read the inbox."},
        {"role": "assistant", "content": "Done reading.", "reasoning_content": "First I read it."},
        {"role": "user", "content": "Now send Bob a note."},
        {"role": "assistant", "content": "", "reasoning_content": "Bob gets a note.",
         "tool_calls": [call("c1", "send_email", to="bob@acme.example", body="hi")]},
    ]))
    rendered = render_trajectory(traj, tok)
    assert_exact(rendered, traj)
    assert len(rendered.unplaced) == 1 and rendered.unplaced[0].startswith("multi:s1 ")
    assert "First I read it" not in rendered.text
    assert "<think>\nBob gets a note.\n</think>" in rendered.text


def test_gemma_parallel_calls_fall_back_to_text_mode(replay_tokenizer):
    tok = copy.copy(replay_tokenizer)
    tok.chat_template = TEMPLATES["gemma"]
    traj = with_actions(Trajectory.from_openai_messages("par", [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Read two inboxes."},
        {"role": "assistant", "content": "", "tool_calls": [call("c1", "read_inbox", limit=1),
                                                            call("c2", "read_inbox", limit=2)]},
        {"role": "tool", "tool_call_id": "c1", "content": "one mail"},
        {"role": "tool", "tool_call_id": "c2", "content": "two mails"},
        {"role": "assistant", "content": "You have three mails."},
    ], TOOLS))
    rendered = render_trajectory(traj, tok)
    assert rendered.notes[0].startswith("rendered in text mode")
    assert rendered.unplaced == []
    assert_exact(rendered, traj)
    kinds = [s.kind for s in rendered.segments]
    assert kinds.count(SegmentKind.action) == 3
    assert kinds.count(SegmentKind.tool_definition) == 2  # the renderer's own block, in text mode too


def test_template_tokens_belong_to_no_segment(replay_tokenizer):
    tok = copy.copy(replay_tokenizer)
    tok.chat_template = TEMPLATES["chatml"]
    rendered = render_trajectory(agent_trajectory(), tok)
    template = rendered.template_positions()
    assert template and template[0] == 0  # <|im_start|>
    pieces = "".join(rendered.text[rendered.offsets[p][0]:rendered.offsets[p][1]] for p in template)
    assert "<|im_start|>" in pieces and "<tools>" in pieces
    assert "Summarize" not in pieces
    assert "read_inbox" not in pieces and "Read unread emails" not in pieces  # the definitions are segments


# -- tool definitions --------------------------------------------------------------------------------


def _tool_defs(rendered):
    return [s for s in rendered.segments if s.kind is SegmentKind.tool_definition]


def test_tool_definitions_placed_in_every_template(templated):
    """Each tool definition is a segment on the tokens of its JSON, wherever the template wrote it:
    the system prompt (ChatML/Qwen3 ``tojson``; Gemma: the renderer's own block after the system
    prompt) or the first user message (Llama 3.1, ``tojson(indent=4)``)."""
    name, tok = templated
    traj = agent_trajectory()
    rendered = render_trajectory(traj, tok)
    defs = _tool_defs(rendered)
    assert [s.provenance.tool_name for s in defs] == ["read_inbox", "send_email"]
    assert not any("tool def" in u for u in rendered.unplaced)
    text = rendered.text
    spans = [text[rendered.offsets[s.token_start][0]:rendered.offsets[s.token_end - 1][1]] for s in defs]
    for span, tool in zip(spans, traj.tools):
        assert json.loads(span.strip()) == tool.as_openai(), (name, span)
    if name == "llama3":
        assert spans[0].startswith('{\n    "type": "function"')  # indent=4, as the template writes it
        user = next(s for s in rendered.segments if s.kind is SegmentKind.user_request)
        assert "Given the following functions" in text[:rendered.offsets[defs[0].token_start][0]]
        assert defs[-1].token_end <= user.token_start  # in the first user turn, before the request
    else:
        system = next(s for s in rendered.segments if s.kind is SegmentKind.system)
        assert system.token_end <= defs[0].token_start  # after the system prompt
        first_user = min(s.token_start for s in rendered.segments if s.provenance.message_index == 1)
        assert defs[-1].token_end <= first_user
    if name == "gemma":  # no tools in the template: the renderer's block, one JSON line per tool
        assert any("tool definitions written after the system prompt" in n for n in rendered.notes)
        assert all(s.text in text for s in defs)


def test_tool_definition_placed_with_escaped_and_sorted_json(replay_tokenizer):
    """A template that writes ``tool.function | tojson(sort_keys=True)`` with ASCII escapes."""
    tok = copy.copy(replay_tokenizer)
    tok.chat_template = TEMPLATES["chatml"].replace("{{- tool | tojson }}", "{{- tool.function | tojson(ensure_ascii=True, sort_keys=True) }}")
    traj = agent_trajectory()
    tools = [t.model_copy(update={"description": t.description + " Café déjà vu."}) for t in traj.tools]
    traj = traj.model_copy(update={"tools": tools})
    rendered = render_trajectory(traj, tok)
    assert "Caf\\u00e9" in rendered.text
    defs = _tool_defs(rendered)
    assert len(defs) == 2 and not rendered.unplaced
    assert_exact(rendered, traj)
    span = rendered.text[rendered.offsets[defs[1].token_start][0]:rendered.offsets[defs[1].token_end - 1][1]]
    assert json.loads(span.strip()) == traj.tools[1].as_openai()["function"]


def test_tool_definitions_a_template_rewrites_are_left_unplaced(replay_tokenizer):
    """A template that writes only each tool's name and description, as prose: no definition is
    guessed onto those tokens; the reason is said."""
    tok = copy.copy(replay_tokenizer)
    tok.chat_template = TEMPLATES["chatml"].replace(
        "{{- tool | tojson }}", "{{- '- ' + tool.function.name + ': ' + tool.function.description }}")
    traj = agent_trajectory()
    rendered = render_trajectory(traj, tok)
    assert "- send_email: Send an email." in rendered.text
    assert not _tool_defs(rendered)
    notes = [u for u in rendered.unplaced if "tool def" in u]
    assert len(notes) == 2 and all("not found in the rendered text" in u for u in notes)
    assert notes[1].startswith("agent:s24 [tool def send_email")
    assert_exact(rendered, traj)  # everything else is placed as before
    assert {s.id for s in rendered.segments} | {u.split(" ")[0] for u in rendered.unplaced} == \
        {s.id for s in segment_trajectory(traj)}


def test_tool_definitions_survive_dropped_turns(replay_tokenizer):
    tok = copy.copy(replay_tokenizer)
    tok.chat_template = TEMPLATES["chatml"]
    traj = _long_trajectory().model_copy(update={"tools": agent_trajectory().tools})
    full = render_trajectory(traj, tok)
    cut = render_trajectory(traj, tok, max_tokens=len(full) // 2)
    assert cut.dropped and len(_tool_defs(cut)) == 2
    assert_exact(cut, traj)


# -- the context limit ---------------------------------------------------------------------------------


def _long_trajectory(turns: int = 8) -> Trajectory:
    msgs = [{"role": "system", "content": "You are an email assistant."},
            {"role": "user", "content": "Read each inbox page and tell me what is urgent."}]
    for k in range(turns):
        msgs.append({"role": "assistant", "content": "", "tool_calls": [call(f"c{k}", "read_inbox", limit=k + 1)]})
        msgs.append({"role": "tool", "tool_call_id": f"c{k}",
                     "content": f"Page {k}: " + " ".join(f"mail {k}-{j} about the quarterly plan." for j in range(12))})
    msgs.append({"role": "assistant", "content": "Nothing is urgent."})
    return with_actions(Trajectory.from_openai_messages("long", msgs))


def test_drop_policy_keeps_system_request_and_recent_turns(replay_tokenizer):
    tok = copy.copy(replay_tokenizer)
    tok.chat_template = TEMPLATES["chatml"]
    traj = _long_trajectory()
    full = render_trajectory(traj, tok)
    assert full.dropped == [] and full.kept_messages == list(range(len(traj.messages)))
    limit = len(full) // 2
    cut = render_trajectory(traj, tok, max_tokens=limit)
    assert len(cut) <= limit
    kept = cut.kept_messages
    assert kept[:2] == [0, 1] and kept[-1] == len(traj.messages) - 1
    dropped = [i for i in range(len(traj.messages)) if i not in kept]
    assert dropped == list(range(2, dropped[-1] + 1))  # a contiguous run of the oldest turns
    assert all(traj.messages[i].role != "tool" or i - 1 in kept for i in kept)  # answers keep their call
    assert cut.dropped[0].startswith(f"{len(dropped)} of {len(traj.messages)} messages dropped to fit max_tokens={limit}")
    assert any("dropped message 2 (assistant: read_inbox#c0)" in d for d in cut.dropped)
    assert cut.dropped_actions and all(f"action {a} " in " ".join(cut.dropped) for a in cut.dropped_actions)
    assert {s.provenance.message_index for s in cut.segments} <= set(kept)
    assert_exact(cut, traj)


def test_drop_policy_refuses_to_truncate(replay_tokenizer):
    tok = copy.copy(replay_tokenizer)
    tok.chat_template = TEMPLATES["chatml"]
    with pytest.raises(ContextTooLong, match="raise max_tokens"):
        render_trajectory(_long_trajectory(), tok, max_tokens=40)


def test_default_limit_from_model_config(replay_tokenizer):
    from types import SimpleNamespace

    from auditor.segments import default_max_tokens

    assert default_max_tokens(SimpleNamespace(config=SimpleNamespace(max_position_embeddings=2048))) == 2048
    assert default_max_tokens(SimpleNamespace(config=SimpleNamespace(max_position_embeddings=131072))) == 8192


def test_template_that_rewrites_whitespace(replay_tokenizer):
    """A template that flattens newlines: fields no longer match verbatim, so each segment is found
    on its own with any whitespace run matching any other."""
    tok = copy.copy(replay_tokenizer)
    tok.chat_template = TEMPLATES["chatml"].replace("message.content + '<|im_end|>", "message.content | replace('\\n', ' ') + '<|im_end|>")
    traj = agent_trajectory(tools=False)
    rendered = render_trajectory(traj, tok)
    assert "Subject: Lunch Are we" in rendered.text
    assert rendered.unplaced == []
    for seg in rendered.segments:
        span = rendered.text[rendered.offsets[seg.token_start][0]:rendered.offsets[seg.token_end - 1][1]]
        if seg.provenance.field != "tool_call":
            flat, text = " ".join(span.split()), " ".join(seg.text.split())
            assert text in flat and len(flat) - len(text) <= 4, seg.id  # at most a shared token's overhang
