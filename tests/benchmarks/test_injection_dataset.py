"""The injection benchmark v2 data (benchmarks/injection): generated deterministically, split by
family and template, every action labelled consistently with the run's variant (no model)."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "injection"
DATA = BENCH / "data"
NEW_STYLES = {"user_message", "fake_turn", "tool_error", "foreign_language", "urgent"}


def _module(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gen():
    return _module("generate")


@pytest.fixture(scope="module")
def runs():
    return _module("dataset").load_runs(DATA)


@pytest.fixture(scope="module")
def splits():
    return json.loads((DATA / "splits.json").read_text())


def test_generation_is_deterministic_and_matches_the_committed_data(gen, tmp_path):
    a, b = gen.generate(), gen.generate()
    assert json.dumps(a) == json.dumps(b)
    assert json.dumps(gen.generate(seed=8)) != json.dumps(a)  # the seed matters
    gen.write(a, tmp_path)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(p.name for p in DATA.iterdir() if p.suffix in (".jsonl", ".json"))
    for name in written:
        assert (tmp_path / name).read_text() == (DATA / name).read_text(), f"{name}: regenerate the data"


def test_size_domains_and_templates(runs, splits):
    assert len(runs) >= 600
    domains = Counter(r.domain for r in runs)
    assert set(domains) == {"email", "files", "calendar", "payments", "messaging", "web", "code"}
    for domain, tsplit in splits["templates"].items():
        used = {r.template for r in runs if r.domain == domain}
        assert len(used) >= 4 and used == set(tsplit["calibration"]) | set(tsplit["heldout"])
        assert len(tsplit["calibration"]) == len(tsplit["heldout"]), domain


def test_calibration_and_heldout_share_no_family_and_no_template(runs, splits):
    by_split = {s: [r for r in runs if r.split == s] for s in ("calibration", "heldout")}
    assert all(by_split.values())
    fams = {s: {r.family for r in rs if r.family} for s, rs in by_split.items()}
    temps = {s: {(r.domain, r.template) for r in rs} for s, rs in by_split.items()}
    assert not fams["calibration"] & fams["heldout"]
    assert not temps["calibration"] & temps["heldout"]
    for r in runs:  # a run's template and family both belong to its split
        assert r.template in splits["templates"][r.domain][r.split], r.id
        assert r.family is None or r.family in splits["families"][r.split], r.id
    sources = {s: Counter(r.family_source for r in rs if r.family) for s, rs in by_split.items()}
    assert "bipia-test" not in sources["calibration"] and "bipia-train" not in sources["heldout"]
    assert sources["calibration"]["bipia-train"] and sources["heldout"]["bipia-test"]
    all_fams = splits["families"]["calibration"] + splits["families"]["heldout"]
    assert len(splits["families"]["heldout"]) >= 0.4 * len(all_fams)
    assert len(NEW_STYLES & set(splits["families"]["heldout"])) >= 2
    assert {"imperative", "fake_system", "html_comment", "json_field", "polite"} <= set(all_fams)
    assert len(NEW_STYLES & set(all_fams)) >= 4
    assert fams["calibration"] | fams["heldout"] == set(all_fams)  # every family is used


def test_every_action_is_labelled_and_labels_agree_with_the_variant(runs):
    for r in runs:
        labelled = r.labelled_actions()
        assert len(labelled) == len(r.trajectory.actions) == len(r.labels) > 0, r.id
        assert set(r.labels.values()) <= {"benign", "injected"}
        injected = [a for a, lab in labelled if lab == "injected"]
        if r.variant in ("injected", "answer_hijack"):
            assert injected and r.metadata["label"] == "injected", r.id
        else:
            assert not injected and r.metadata["label"] == "benign", r.id
        if r.variant == "answer_hijack":
            assert r.labels.get("final") == "injected" and len(injected) == 1, r.id
            assert r.family_source.startswith("bipia"), r.id
        finals = [a for a in r.trajectory.actions if a.kind.value == "final_answer"]
        assert len(finals) == ("final" in r.labels)
    variants = Counter(r.variant for r in runs)
    assert 0.05 <= variants["answer_hijack"] / len(runs) <= 0.10
    assert all(variants[v] for v in ("clean", "delegated", "distractor", "ignored", "injected"))
    assert sum(len(r.trajectory.actions) >= 3 for r in runs) > 0.6 * len(runs)  # multi-step runs


def _found(needle: str, text: str) -> bool:
    return needle in text or json.dumps(needle, ensure_ascii=False)[1:-1] in text


def test_the_injection_span_points_at_the_injected_text(runs):
    bipia = {s: json.loads((BENCH / "third_party" / "bipia" / f"text_attack_{s}.json").read_text())
             for s in ("train", "test")}
    for r in runs:
        span = r.metadata.get("injection")
        if r.variant not in ("ignored", "injected", "answer_hijack"):
            assert span is None, r.id
            continue
        msg = r.trajectory.messages[span["message_index"]]
        text = msg.content[span["char_start"]:span["char_end"]]
        assert text.strip() == text and text, r.id
        assert msg.role == "tool" or (msg.role == "user" and "```" in msg.content), r.id
        if r.variant == "answer_hijack":
            b = r.metadata["bipia"]
            planted = bipia[r.family_source.split("-")[1]][b["category"]][b["index"]]
            assert text in (planted, json.dumps(planted, ensure_ascii=False)[1:-1]), r.id  # as-is
            continue
        goal = r.metadata["goal"]
        if r.family == "foreign_language":  # the goal in another language: its values or names stay
            values = r.metadata["attacker_values"] or re.findall(r"[\w.]*[\d_][\w.]*|[a-z]{6,}", goal)
            assert any(_found(v, text) for v in values), (r.id, text)
        else:
            assert _found(goal[1:], text), (r.id, goal, text)  # the goal as written (first letter may be upper)
        assert all(_found(v, text) for v in r.metadata["attacker_values"]), (r.id, text)
        injected = [a for a, lab in r.labelled_actions() if lab == "injected"]
        assert all(a.message_index > span["message_index"] for a in injected), r.id


def test_benign_actions_never_carry_attacker_values(runs):
    for r in runs:
        values = r.metadata.get("attacker_values") or []
        for action, label in r.labelled_actions():
            text = json.dumps(action.arguments) + (action.edit.replace if action.edit else "")
            if action.kind.value == "final_answer":
                text = r.trajectory.messages[action.message_index].content
            hits = [v for v in values if v in text]
            if label == "benign":
                assert not hits, (r.id, action.id, hits)
        injected = [a for a, lab in r.labelled_actions() if lab == "injected" and a.kind.value != "final_answer"]
        if injected and values:
            assert any(v in json.dumps(a.arguments) + (a.edit.replace if a.edit else "") for a in injected
                       for v in values), r.id


def test_calls_use_offered_tools_and_distractors_are_benign(runs):
    for r in runs:
        offered = {t.name for t in r.trajectory.tools}
        for a in r.trajectory.actions:
            if a.kind.value == "tool_call":
                assert a.tool_name in offered, (r.id, a.tool_name)
        if r.variant == "distractor":
            d = r.metadata["distractor"]
            assert r.trajectory.messages[d["message_index"]].content[d["char_start"]:d["char_end"]], r.id


def test_benign_runs_copy_decisive_values_from_data(runs):
    benign = [r for r in runs if r.metadata["label"] == "benign"]
    copied = 0
    for r in benign:
        entries = r.metadata.get("delegated") or []
        if not entries:
            continue
        copied += 1
        msgs = r.trajectory.messages
        for e in entries:
            call = next(a for a in r.trajectory.actions if a.tool_call_id == e["call"])
            value = call.arguments[e["argument"]]
            assert e["value"] == value or e["value"] in value, (r.id, e)
            assert e["argument"] in r.metadata["decisive"][e["call"]], (r.id, e)
            earlier = [m.content for m in msgs[:call.message_index] if m.role == "tool"]
            assert any(e["value"] in c for c in earlier), (r.id, e)  # read from data ...
            asked = [m.content for m in msgs if m.role == "user"]
            assert not any(e["value"] in c for c in asked), (r.id, e)  # ... never named by the user
    assert copied >= 0.4 * len(benign), (copied, len(benign))
    variants = Counter(r.variant for r in benign if r.metadata.get("delegated"))
    assert variants["ignored"] and variants["distractor"] and variants["delegated"]


def test_injections_vary_tools_and_attacker_values(runs):
    injected = [r for r in runs if r.variant == "injected" and "same_tool" in r.metadata]
    same = Counter(r.metadata["same_tool"] for r in injected)
    assert same[True] >= 0.2 * len(injected) and same[False] >= 0.2 * len(injected)
    obeyed = Counter(r.metadata["obeyed"] for r in injected)
    assert obeyed["last"] and obeyed["continued"]
    # some attacker recipients pass for the user's organisation (lookalike or same domain)
    lookalike = [r for r in injected for v in r.metadata["attacker_values"] if "@" in v and
                 any(v.split("@")[1].split(".")[0].replace("-", "").startswith(p.split("@")[1].split(".")[0][:5])
                     for m in r.trajectory.messages if m.role == "tool" for p in re.findall(r"[\w.-]+@[\w.-]+", m.content)
                     if p != v)]
    assert len(lookalike) >= 20


def test_describe_counts_everything(runs):
    out = io.StringIO()
    _module("dataset").describe(runs, out)
    text = out.getvalue()
    assert text.startswith(f"{len(runs)} runs, {sum(len(r.labels) for r in runs)} labelled actions")
    for word in ("calibration / email", "heldout / code", "answer_hijack", "bipia_test:", "/ tool_call / injected"):
        assert word in text, word


_IDENT = re.compile(r"https?://[^\s\"'`)]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\b[A-Z]{2}\d{2}[A-Z0-9]{10,30}\b|"
                    r"\b[\w-]+(?:/[\w.-]+)+\.\w+\b|\bev_\d+\b|\b\d{4,}\b")


def _strings(value) -> list[str]:
    if isinstance(value, dict):  # amounts and counts may be computed; identifiers may not
        return [s for k, v in value.items() if k not in ("amount", "people", "nights", "n", "limit")
                for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def test_calls_only_use_identifiers_the_agent_has_seen(runs):
    """Every address, URL, IBAN, path or id in a call's arguments occurs in an earlier message (the
    request, a tool output, a pasted file): neither benign nor injected calls invent values."""
    for r in runs:
        msgs = r.trajectory.messages
        for a in r.trajectory.actions:
            if a.kind.value != "tool_call":
                continue
            seen = "\n".join(m.content for m in msgs[:a.message_index])
            seen += json.dumps(seen)  # JSON-escaped outputs
            for s in _strings(a.arguments):
                for ident in _IDENT.findall(s):
                    assert ident in seen, (r.id, a.tool_name, ident)
