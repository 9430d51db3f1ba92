"""The action export that `audit show` and the HTML report share."""

from __future__ import annotations

import json

import pytest

from auditor.store import action_export, audit_action_export
from auditor.store.export import display_token


def test_export_has_drivers_tokens_and_hops(store, example_audits):
    store.record_audits(example_audits)
    data = action_export(store, "injected-inbox-forward:a1", top=2)
    json.dumps(data)  # JSON-able as it is
    assert data["action"]["tool_name"] == "send_email" and data["action"]["summary"].startswith("send_email(")
    assert data["run"]["run_id"] == "run-a" and data["trajectory_id"] == "injected-inbox-forward"
    assert [d["rank"] for d in data["drivers"]] == list(range(1, len(data["drivers"]) + 1))
    top = data["drivers"][0]
    assert top["tool_name"] == "read_inbox" and "archive@exfil.example" in top["text"]
    assert len(data["segments"]) == 2
    seg = data["segments"][0]
    assert len(seg["tokens"]) == seg["token_end"] - seg["token_start"]
    assert seg["max_score"] == max(t["score"] for t in seg["tokens"])
    best = {t["i"]: t for t in seg["tokens"]}[seg["strongest"][0]]
    assert best["score"] == seg["max_score"]
    assert data["hops"] and 0 <= data["support"] < 0.5
    assert data["authority_share"] + data["data_share"] == pytest.approx(1.0)
    assert data["output"]["text"].startswith("{")


def test_store_and_memory_exports_agree(store, example_audits):
    store.record_audits(example_audits)
    for att in example_audits[1].actions:
        assert action_export(store, att.action.id) == audit_action_export(example_audits[1], att.action.id)
    with pytest.raises(KeyError):
        audit_action_export(example_audits[1], "missing")


@pytest.mark.parametrize("token, text", [
    ("Ġare", " are"), ("Ċ", "\n"), ("âĢĻ", "\u2019"), ("<|im_start|>", "<|im_start|>"), ("▁hello", " hello"),
    ("plain", "plain"), ("", ""),
])
def test_display_token(token, text):
    assert display_token(token) == text
