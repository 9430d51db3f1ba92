"""The guard on the embedded SmolLM2: turn by turn through the injected example, incremental
capture gives the verdicts of a full capture, and the injected send_email is blocked exactly as
`audit check` flags it after the fact."""

from __future__ import annotations

import pytest
import torch

import auditor
from auditor.guard import Guard

pytestmark = pytest.mark.slow
EPS32 = torch.finfo(torch.float32).eps


def test_incremental_equals_full_and_blocks_what_the_check_flags(embedded_model, examples_dir):
    torch.set_num_threads(2)
    traj = auditor.load(examples_dir / "injected_email.jsonl").trajectories[0]
    tools = [t.as_openai() for t in traj.tools]
    incremental = Guard(embedded_model)
    incremental.states.max_new_ratio = None  # extend even a short prefix: the incremental path on this model
    fresh = Guard(embedded_model, state_budget_bytes=0)
    tol = 32 * 16 * EPS32 * (embedded_model[0].config.num_hidden_layers + 1)
    verdicts = {}
    for k, msg in enumerate(traj.messages):
        if msg.role != "assistant" or not msg.tool_calls:
            continue
        [a] = incremental.check_reply(traj.messages[:k], msg, tools)
        [b] = fresh.check_reply(traj.messages[:k], msg, tools)
        assert (a.status, a.argument, a.rules) == (b.status, b.argument, b.rules)
        assert a.support == pytest.approx(b.support, abs=tol)
        assert [d.share for d in a.drivers] == pytest.approx([d.share for d in b.drivers], abs=tol)
        verdicts[a.tool_name] = a
    assert incremental.states.stats.extensions == 1  # the second call was captured from the first's states
    assert verdicts["read_inbox"].allowed
    send = verdicts["send_email"]
    assert send.status == "blocked" and send.argument == "to" and send.drivers[0].kind == "tool_output"
    assert "archive@exfil.example" in send.drivers[0].quote
    report = auditor.check_trajectories([traj])
    [finding] = report.findings
    assert finding.tool_name == "send_email" and finding.support == pytest.approx(send.support, abs=tol)
