"""Policy parsing, defaults, lookups and errors."""

from __future__ import annotations

import tomllib

import pytest

from auditor.check import PolicyError, default_policy, load_policy, parse_policy
from auditor.check import defaults
from auditor.trajectory import Action, ActionKind, SegmentKind


def _action(tool: str | None, kind: ActionKind = ActionKind.tool_call) -> Action:
    return Action(id="t:a0", kind=kind, message_index=0, step=0, tool_name=tool)


def test_default_policy_matches_defaults_module():
    p = default_policy()
    assert p.threshold == defaults.DEFAULT_THRESHOLD
    assert p.tools == defaults.DEFAULT_TOOL_THRESHOLDS
    assert tuple(p.ignore) == defaults.DEFAULT_IGNORE
    assert p.weighting == defaults.DEFAULT_WEIGHTING
    assert p.judge == defaults.DEFAULT_JUDGE
    assert tuple(p.decisive_arguments) == defaults.DEFAULT_DECISIVE_ARGUMENTS
    assert p.arguments == {k: list(v) for k, v in defaults.DEFAULT_TOOL_ARGUMENTS.items()}
    assert p.authority_kinds == {SegmentKind.system, SegmentKind.user_request, SegmentKind.user_constraint}
    assert p.data_kinds == {SegmentKind.tool_output, SegmentKind.file_context}
    assert p.rules.data_top_driver == defaults.DEFAULT_DATA_TOP_DRIVER
    assert p.rules.max_reasoning_flow == defaults.DEFAULT_MAX_REASONING_FLOW
    assert p.source == "default"


def test_file_overrides_only_the_keys_it_names(tmp_path):
    f = tmp_path / "policy.toml"
    f.write_text('threshold = 0.7\nignore = ["read_*"]\n[tools]\nsend_email = 0.9\n"read_*" = 0.1\n')
    p = load_policy(f)
    assert p.threshold == 0.7 and p.tools["send_email"] == 0.9
    assert p.data_kinds == default_policy().data_kinds  # untouched keys keep the defaults
    assert p.source == str(f)


def test_check_table_is_accepted():
    p = parse_policy("[check]\nthreshold = 0.3\n")
    assert p.threshold == 0.3


def test_threshold_lookup_exact_beats_glob_and_longer_glob_wins():
    p = parse_policy('decide = "support"\nthreshold = 0.5\n[tools]\n"send_*" = 0.6\n"send_email*" = 0.7\nsend_email = 0.8\n"read_*" = 0.1\n')
    assert p.threshold_for("send_email") == 0.8
    assert p.threshold_for("send_email_draft") == 0.7
    assert p.threshold_for("send_sms") == 0.6
    assert p.threshold_for("read_file") == 0.1
    assert p.threshold_for("delete_file") == 0.5
    assert p.threshold_for(None) == 0.5


def test_ignore_matches_tool_names_kinds_and_globs():
    p = parse_policy('ignore = ["final_answer", "list_*", "search_files"]')
    assert p.ignores(_action(None, ActionKind.final_answer))
    assert p.ignores(_action("list_events"))
    assert p.ignores(_action("search_files"))
    assert not p.ignores(_action("send_email"))
    assert not p.ignores(_action("edit_file", ActionKind.code_edit))


@pytest.mark.parametrize(
    "text, match",
    [
        ("threshold = 1.5", "threshold"),
        ('threshold = "high"', "threshold"),
        ('authority_kinds = ["user_request", "tool_output"]', "both authority and data"),
        ('authority_kinds = ["boss"]', "authority_kinds"),
        ("authority_kinds = []", "empty"),
        ("[tools]\nsend_email = 2", "tools.send_email"),
        ('weighting = "loud"', "weighting"),
        ("colour = 1", "colour"),
        ("[rules]\nmax_reasoning_flow = -1", "max_reasoning_flow"),
        ("threshold = ", "not valid TOML"),
    ],
)
def test_bad_policies_name_the_key(text, match):
    with pytest.raises(PolicyError, match=match):
        parse_policy(text, source="p.toml")


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "nope.toml")


def test_shipped_toml_parses_and_is_package_data():
    from importlib import resources

    text = resources.files("auditor.check").joinpath("default_policy.toml").read_text()
    assert tomllib.loads(text)["threshold"] == defaults.DEFAULT_THRESHOLD


def test_with_overrides_keeps_source():
    p = default_policy().with_overrides(threshold=0.2)
    assert p.threshold == 0.2 and p.source == "default"


def test_defaults_come_from_the_benchmark():
    """The shipped verdict is the one benchmarks/bench_check.py calibrated (docs/benchmarks/check.md):
    its decisive arguments, and each model's weights, intercept and threshold to the 4 decimals the
    policy file is written with."""
    import json
    from pathlib import Path

    result = json.loads((Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "check.json").read_text())
    sel = result["selection"]
    assert list(defaults.DEFAULT_DECISIVE_ARGUMENTS) == sel["decisive"]
    for name in ("causal", "attribution"):
        shipped = defaults.DEFAULT_VERDICT[name]
        assert set(shipped["weights"]) == set(sel[name]["weights"])
        for key in ("intercept", "threshold"):
            assert shipped[key] == pytest.approx(sel[name][key], abs=5e-5)
        for f, w in sel[name]["weights"].items():
            assert shipped["weights"][f] == pytest.approx(w, abs=5e-5)


def test_decisive_arguments_per_tool_override_the_list():
    p = parse_policy('decisive_arguments = ["to", "recipient*"]\n[arguments]\ntransfer_funds = ["account", "amount"]\n'
                     '"send_*" = ["number"]\nsend_email = ["to", "cc"]')
    assert p.decisive_for("share_file", ["path", "recipient_email"]) == ["recipient_email"]
    assert p.decisive_for("transfer_funds", ["memo", "amount", "account"]) == ["amount", "account"]
    assert p.decisive_for("send_sms", ["to", "number"]) == ["number"]  # the glob beats the list
    assert p.decisive_for("send_email", ["body", "cc", "to"]) == ["cc", "to"]  # the exact name beats the glob
    assert p.decisive_for(None, ["to"]) == ["to"]
    assert default_policy().decisive_for("run_command", ["command"]) == []  # judged as a whole call


def test_bad_judge_and_arguments_are_named():
    with pytest.raises(PolicyError, match="judge"):
        parse_policy('judge = "vibes"')
    with pytest.raises(PolicyError, match="arguments.send_email"):
        parse_policy('[arguments]\nsend_email = "to"')


def test_tool_definitions_are_on_neither_side_by_default_and_a_policy_can_place_them():
    p = default_policy()
    assert SegmentKind.tool_definition not in p.authority_kinds | p.data_kinds
    untrusted = parse_policy('data_kinds = ["tool_output", "file_context", "tool_definition"]')
    assert SegmentKind.tool_definition in untrusted.data_kinds
    trusted = parse_policy('authority_kinds = ["system", "user_request", "user_constraint", "tool_definition"]')
    assert SegmentKind.tool_definition in trusted.authority_kinds
    with pytest.raises(PolicyError, match="both authority and data: tool_definition"):
        parse_policy('authority_kinds = ["user_request", "tool_definition"]\n'
                     'data_kinds = ["tool_output", "tool_definition"]')
