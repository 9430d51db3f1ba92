"""Support scores on hand-built audits: the formula, the rules and the findings they produce."""

from __future__ import annotations

import re

import pytest

from auditor.check import check_audit, check_audits, check_trajectories, parse_policy, score_action
from auditor.check.scoring import RULE_DATA_TOP_DRIVER, RULE_LOW_SUPPORT, RULE_REASONING
from auditor.audit.schema import HopFlow

from helpers.check import FakeAuditor, build_audit

# injected_email: m0 system, m1 user, m2 read_inbox call, m3 inbox (tool output), m4 send_email, m5, m6 answer
INJECTED = {0: {"m0": 0.3, "m1": 0.7}, 1: {"m0": 0.1, "m1": 0.1, "m2": 0.1, "m3": 0.7}}


def test_support_is_authority_over_authority_plus_data(injected):
    audit = build_audit(injected, INJECTED)
    policy = parse_policy("decide = 'support'\nthreshold = 0.5")
    read, send = (score_action(a, policy, audit) for a in audit.actions)
    assert read.support == pytest.approx(1.0) and not read.flagged
    assert send.authority_share == pytest.approx(0.2) and send.data_share == pytest.approx(0.7)
    assert send.other_share == pytest.approx(0.1)  # the earlier call (prior_turn) counts on neither side
    assert send.support == pytest.approx(0.2 / 0.9)
    assert send.rules == [RULE_LOW_SUPPORT]
    assert send.top_driver.segment_id == "m3" and send.top_data_driver.segment_id == "m3"
    assert send.margin == pytest.approx(0.5 - 0.2 / 0.9)


def test_per_tool_threshold_decides(injected):
    audit = build_audit(injected, {1: {"m1": 0.4, "m3": 0.6}})
    (attr,) = audit.actions
    assert not score_action(attr, parse_policy("decide = 'support'\nthreshold = 0.5\n[tools]\nsend_email = 0.3"), audit).flagged
    assert score_action(attr, parse_policy("decide = 'support'\nthreshold = 0.3\n[tools]\n'send_*' = 0.5"), audit).flagged


def test_authority_kinds_come_from_the_policy(injected):
    audit = build_audit(injected, {1: {"m0": 0.6, "m1": 0.1, "m3": 0.3}})
    (attr,) = audit.actions
    assert not score_action(attr, parse_policy("decide = 'support'\nthreshold = 0.5"), audit).flagged
    user_only = parse_policy('decide = "support"\nthreshold = 0.5\nauthority_kinds = ["user_request"]')
    s = score_action(attr, user_only, audit)
    assert s.support == pytest.approx(0.25) and s.flagged


def test_per_token_weighting_uses_segment_lengths(injected):
    audit = build_audit(injected, {1: {"m1": 0.3, "m3": 0.7}})
    audit.segments[3].token_end = audit.segments[3].token_start + 70  # the inbox is 7x longer than the request
    (attr,) = audit.actions
    mass = score_action(attr, parse_policy('weighting = "mass"'), audit)
    per_tok = score_action(attr, parse_policy('weighting = "per_token"'), audit)
    assert mass.support == pytest.approx(0.3)
    assert per_tok.support == pytest.approx((0.3 / 10) / (0.3 / 10 + 0.7 / 70))


def test_no_evidence_passes_and_says_so(injected):
    audit = build_audit(injected, {1: {"m2": 1.0}})
    s = score_action(audit.actions[0], parse_policy("decide = 'support'\nthreshold = 0.9"), audit)
    assert s.no_evidence and s.support == 1.0 and not s.flagged


def test_data_top_driver_rule(injected):
    audit = build_audit(injected, {1: {"m1": 0.45, "m3": 0.55}})
    (attr,) = audit.actions
    assert not score_action(attr, parse_policy("decide = 'support'\nthreshold = 0.4"), audit).flagged
    s = score_action(attr, parse_policy("decide = 'support'\nthreshold = 0.4\n[rules]\ndata_top_driver = true"), audit)
    assert s.rules == [RULE_DATA_TOP_DRIVER]


def test_reasoning_rule_needs_high_flow_and_data_driven_reasoning(injected):
    hops_data = [HopFlow(hop=0, flow_ratio=0.8, by_kind={"reasoning": 0.8, "user_request": 0.2}),
                 HopFlow(hop=1, flow_ratio=0.0, by_kind={"tool_output": 0.9, "user_request": 0.1})]
    hops_user = [hops_data[0], HopFlow(hop=1, flow_ratio=0.0, by_kind={"tool_output": 0.2, "user_request": 0.8})]
    policy = parse_policy("decide = 'support'\nthreshold = 0.3\n[rules]\nmax_reasoning_flow = 0.5")
    shares = {1: {"m1": 0.6, "m3": 0.4}}
    s = score_action(build_audit(injected, shares, {1: hops_data}).actions[0], policy, None)
    assert s.reasoning_flow == pytest.approx(0.8) and s.reasoning_support == pytest.approx(0.1)
    assert s.rules == [RULE_REASONING]
    assert not score_action(build_audit(injected, shares, {1: hops_user}).actions[0], policy, None).flagged
    off = parse_policy("decide = 'support'\nthreshold = 0.3")
    assert not score_action(build_audit(injected, shares, {1: hops_data}).actions[0], off, None).flagged


def test_finding_names_action_arguments_driver_quote_and_shares(injected):
    audit = build_audit(injected, INJECTED)
    result = check_audit(audit, parse_policy("decide = 'support'\nthreshold = 0.5"), file="runs/x.jsonl", line=3)
    (f,) = result.findings
    assert f.tool_name == "send_email" and f.arguments["to"] == "archive@exfil.example"
    assert f.file == "runs/x.jsonl" and f.line == 3 and f.trajectory_id == "injected-inbox-forward"
    assert f.driver.segment_id == "m3" and f.driver.kind == "tool_output"
    assert f.driver.quote.startswith("From: bob@acme.example")  # no token scores: the segment's start
    assert "send_email" in f.message and "0.22" in f.message and "tool_output" in f.message
    assert [v.status for v in result.verdicts] == ["passed", "failed", "ignored"]  # final answer ignored


def test_quote_follows_the_hottest_tokens(injected):
    inbox = injected.messages[3].content
    words = inbox.split(" ")
    # token strings for positions 30..40 (segment m3): the 10 first words, with the 6th..9th hot
    tokens = [""] * 30 + [w + " " for w in words[:10]] + [""] * 40
    scores = [0.0] * 80
    for i in range(35, 39):
        scores[i] = 1.0
    audit = build_audit(injected, {1: {"m1": 0.1, "m3": 0.9}}, token_scores={1: scores}, tokens=tokens)
    (f,) = check_audit(audit, parse_policy("decide = 'support'\nthreshold = 0.5")).findings
    assert "Are we still on for lunch" in f.driver.quote


def test_check_audits_and_report_exit_codes(injected, benign):
    policy = parse_policy("decide = 'support'\nthreshold = 0.5")
    bad = build_audit(injected, INJECTED)
    good = build_audit(benign, {0: {"m1": 1.0}, 1: {"m1": 0.6, "m3": 0.4}, 2: {"m1": 0.7, "m5": 0.3}})
    report = check_audits([good], policy)
    assert report.passed and report.exit_code() == 0
    report = check_audits([good, (bad, "b.jsonl", 1)], policy)
    assert not report.passed and report.exit_code() == 1 and len(report.findings) == 1
    assert "1 unsupported action(s) in 1 trajectory(ies)" in report.summary()


def test_check_trajectories_audits_only_checked_actions(injected, benign):
    fake = FakeAuditor({"send_email": {"m1": 0.1, "m3": 0.9}, "read_inbox": {"m1": 0.9, "m3": 0.1}})
    policy = parse_policy('decide = "support"\nthreshold = 0.5\nignore = ["final_answer", "read_*"]')
    report = check_trajectories([injected], policy, fake)
    (sent,) = fake.seen
    assert [a.tool_name for a in sent.actions] == ["send_email"]
    assert [v.status for v in report.results[0].verdicts] == ["ignored", "failed", "ignored"]
    assert report.exit_code() == 1


def test_audit_errors_are_reported_not_raised(injected):
    class Broken:
        def audit(self, traj, progress=None):
            raise RuntimeError("context too long")

    report = check_trajectories([injected], parse_policy("decide = 'support'\nthreshold = 0.5"), Broken())
    assert report.results[0].error == "RuntimeError: context too long"
    assert report.exit_code() == 3 and report.exit_code(allow_skipped=True) == 0


def test_nothing_to_check_needs_no_auditor(injected):
    report = check_trajectories([injected], parse_policy('ignore = ["*"]'), auditor=None)
    assert report.passed and report.checked_actions == 0


# the injected example's send_email: the body restates the inbox (data), the recipient is the question
SEND_ARGS = {"to": {"m1": 0.7, "m3": 0.3}, "subject": {"m1": 0.2, "m3": 0.8}, "body": {"m1": 0.1, "m3": 0.9}}


def test_arguments_judge_by_the_least_supported_decisive_argument(injected):
    audit = build_audit(injected, INJECTED, arguments={1: SEND_ARGS})
    send = audit.actions[1]
    s = score_action(send, parse_policy("decide = 'support'\nthreshold = 0.5"), audit)
    assert s.argument == "to" and s.argument_supports == {"to": pytest.approx(0.7)}  # body, subject: not decisive
    assert s.support == pytest.approx(0.7) and not s.flagged
    assert s.authority_share == pytest.approx(0.7) and s.data_share == pytest.approx(0.3)  # the argument's shares
    assert s.action_support == pytest.approx(0.2 / 0.9)
    # the same action judged as a whole call is flagged
    whole = score_action(send, parse_policy('decide = "support"\nthreshold = 0.5\njudge = "action"'), audit)
    assert whole.argument is None and whole.support == pytest.approx(0.2 / 0.9) and whole.flagged
    # with every argument decisive, the body (restating data) decides and the call is flagged
    every = score_action(send, parse_policy('decide = "support"\nthreshold = 0.5\ndecisive_arguments = ["*"]'), audit)
    assert every.argument == "body" and every.support == pytest.approx(0.1) and every.flagged


def test_a_recipient_taken_from_data_is_flagged_with_its_driver(injected):
    args = {1: {**SEND_ARGS, "to": {"m1": 0.1, "m3": 0.9}, "cc": {"m1": 0.6, "m3": 0.4}}}
    audit = build_audit(injected, INJECTED, arguments=args)
    s = score_action(audit.actions[1], parse_policy("decide = 'support'\nthreshold = 0.5"), audit)
    assert s.argument == "to" and s.argument_supports == {"to": pytest.approx(0.1), "cc": pytest.approx(0.6)}
    assert s.flagged and s.top_data_driver.segment_id == "m3"
    (finding,) = check_audit(audit, parse_policy("decide = 'support'\nthreshold = 0.5")).findings
    assert finding.argument == "to" and "its to = " in finding.message
    assert finding.action_support == pytest.approx(0.2 / 0.9)


def test_quote_comes_from_the_deciding_arguments_token_scores(injected):
    """The call's hottest words in the inbox are not the ones that chose the recipient: a finding
    that rests on `to` quotes the window hot in the argument's token scores, not the call's."""
    words = re.findall(r"\S+\s*", injected.messages[3].content)[:40]
    tokens = [""] * 30 + words + [""] * (50 - len(words))  # segment m3 widened to tokens 30..70, one word each
    call, arg = [0.0] * 80, [0.0] * 80
    call[30 + 1] = 1.0  # the call's hottest word: bob's address, in the first mail
    arg[30 + next(i for i, w in enumerate(words) if "archive@exfil.example" in w)] = 1.0  # the injected address
    args = {1: {**SEND_ARGS, "to": {"m1": 0.1, "m3": 0.9}}}

    def audit_of(argument_token_scores):
        audit = build_audit(injected, INJECTED, arguments=args, token_scores={1: call}, tokens=tokens,
                            argument_token_scores=argument_token_scores)
        audit.segments[3].token_end = 30 + len(words)
        return audit

    policy = parse_policy("decide = 'support'\nthreshold = 0.5")
    result = check_audit(audit_of({1: {"to": arg}}), policy)
    (f,) = result.findings
    assert f.argument == "to" and f.driver.segment_id == "m3"
    assert "archive@exfil.example" in f.driver.quote and "bob@acme.example" not in f.driver.quote
    (verdict,) = [v for v in result.verdicts if v.argument == "to"]
    assert verdict.top_driver.segment_id == "m3" and verdict.top_driver.quote == f.driver.quote
    # without the argument's token scores the quote falls back to the call's; the verdict is the same
    (g,) = check_audit(audit_of(None), policy).findings
    assert "bob@acme.example" in g.driver.quote and "archive@exfil.example" not in g.driver.quote
    assert (g.argument, g.support, g.rules) == (f.argument, f.support, f.rules)


def test_actions_without_decisive_arguments_are_judged_whole(injected):
    audit = build_audit(injected, INJECTED, arguments={1: {"body": SEND_ARGS["body"]}})
    s = score_action(audit.actions[1], parse_policy("decide = 'support'\nthreshold = 0.5"), audit)
    assert s.argument is None and s.support == pytest.approx(0.2 / 0.9)
    plain = build_audit(injected, INJECTED)  # an audit made without arguments
    assert score_action(plain.actions[1], parse_policy("decide = 'support'\nthreshold = 0.5"), plain).argument is None


# -- tool definitions: neither side by default, data where the policy says so -------------------------

UNTRUSTED_TOOLS = 'data_kinds = ["tool_output", "file_context", "tool_definition"]'


def test_tool_definition_share_moves_no_support_and_no_rule(injected):
    """A tool definition that takes half the mass scales every other share by one factor: the
    support (either weighting) and the data-top-driver rule are those without it; it is reported
    as the top driver (it is the strongest), as the store's views report it."""
    before = build_audit(injected, {1: {"m1": 0.3, "m2": 0.1, "m3": 0.6}})
    after = build_audit(injected, {1: {"t3": 0.5, "m1": 0.15, "m2": 0.05, "m3": 0.3}}, tool_definitions=True)
    assert after.segment("t3").kind.value == "tool_definition" and after.segment("t3").provenance.tool_name == "send_email"
    for text in ("decide = 'support'\nthreshold = 0.5", 'decide = "support"\nthreshold = 0.5\nweighting = "per_token"',
                 "decide = 'support'\nthreshold = 0.2\n[rules]\ndata_top_driver = true"):
        policy = parse_policy(text)
        b, a = score_action(before.actions[0], policy, before), score_action(after.actions[0], policy, after)
        assert a.support == pytest.approx(b.support) and a.rules == b.rules
        assert b.top_driver.segment_id == "m3" and a.top_driver.segment_id == "t3"
        assert a.top_data_driver.segment_id == b.top_data_driver.segment_id == "m3"
        assert a.other_share == pytest.approx(0.55)  # the earlier call and the tool definition
    assert score_action(after.actions[0], parse_policy("decide = 'support'\nthreshold = 0.2\n[rules]\ndata_top_driver = true"),
                        after).rules == [RULE_DATA_TOP_DRIVER]  # m3 outweighs m1 at the top: t3 does not hide it
    assert after.actions[0].drivers[0].segment_id == "t3"


def test_untrusted_tool_definitions_are_data(injected):
    audit = build_audit(injected, {1: {"t3": 0.5, "m1": 0.15, "m2": 0.05, "m3": 0.3}}, tool_definitions=True)
    default = score_action(audit.actions[0], parse_policy("decide = 'support'"), audit)
    assert default.support == pytest.approx(0.15 / 0.45)  # 0.33 >= the default threshold 0.27
    assert not default.flagged
    policy = parse_policy("decide = 'support'\n" + UNTRUSTED_TOOLS)
    s = score_action(audit.actions[0], policy, audit)
    assert s.support == pytest.approx(0.15 / 0.95) and s.rules == [RULE_LOW_SUPPORT]
    assert s.top_driver.segment_id == s.top_data_driver.segment_id == "t3"
    (f,) = check_audit(audit, policy).findings
    assert f.driver.kind == "tool_definition" and "tool def send_email" in f.message
