"""Benchmark the runtime guard on the embedded SmolLM2-135M: latency per turn as a conversation
grows, incremental vs full capture, 16-bit state storage, and the proxy's overhead on vLLM.

    python benchmarks/bench_guard.py                   # the 8k growth + 16-bit (~15-25 min CPU on 2 shared cores)
    python benchmarks/bench_guard.py --vllm            # + the proxy's overhead (starts vLLM from .venv-vllm)
    python benchmarks/bench_guard.py --quick           # small sizes, a smoke test

Writes benchmarks/results/guard.json and docs/benchmarks/guard.md.

1. *Growth*: a MailPilot-style conversation (system prompt, a user request, then one tool call and
   its 330-token result per turn: documents of this repository) grows to `--turns` turns (~7.8k
   tokens with the agents' chat template, inside the model's 8,192: past it the renderer drops
   middle turns, the prefix changes and every turn is captured whole); the last call is a
   `send_email`. At every turn the
   guard (`Guard`, the shipped policy, FlashTrace with 1 hop, states in float32) judges the turn's
   new call: its wall and CPU time, the tokens it forwarded (only those past the previous turn:
   the extension) and its verdict. At checkpoint turns the same verdict is computed from scratch:
   - *full re-capture*: a capture of the whole conversation, timed at that turn, plus the same
     attribution work the incremental guard did at that turn (the targets and the states are the
     same to float error: the verdicts are compared); one checkpoint is also run end to end by a
     guard without a state cache, to check that sum;
   - *full re-audit*: what auditing the conversation again after each turn costs (`audit check`
     after the fact): the whole capture, plus the attribution of every call so far. A call's
     attribution reads only the states before its end, so it costs at turn t what it cost when it
     was new: the sum of the incremental turns' attribution times (checked end to end at the
     first checkpoint).
2. *16-bit storage*: bytes of a state cache per 1k tokens in float32 and 16-bit; at checkpoint
   turns, the previous turn's float32 states cast to bfloat16 / float16 (what a 16-bit capture of
   the same forward stores) are extended by the new turn in that dtype (the new tokens attend to
   the rounded keys) and the call is judged: the largest difference of the score (support) and
   of any driver share against float32.
3. *Proxy overhead* (`--vllm` or `--upstream URL`): a benign text turn and a benign tool-call turn
   of the `inbox_share` scenario sent to vLLM directly and through `GuardProxy`, alternating;
   the median added latency as a ratio of the server's own.

Times are process CPU seconds with one torch thread (robust to the other jobs sharing the cores;
wall seconds are in the JSON too), except the proxy's, which are wall (vLLM is another process).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "guard.json"
DOC = ROOT / "docs" / "benchmarks" / "guard.md"
COMMAND = "python benchmarks/bench_guard.py --vllm"
CHAT_TEMPLATE = ROOT / "examples" / "agents" / "chat_template.jinja"
SYSTEM = ("You are MailPilot, the email assistant of Dana Reyes at Northwind Traders. You can read her mail, search "
          "her documents and send email for her. Only act on requests from Dana herself.")
USER = ("Go through the project documents one by one and give me a short summary of each. When you are done, email "
        "the summary to dana.reyes@northwind.example.")
TOOLS = [
    {"type": "function", "function": {"name": "read_document", "description": "Read one of the user's documents.",
                                      "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                                                     "required": ["path"]}}},
    {"type": "function", "function": {"name": "send_email", "description": "Send an email on the user's behalf.",
                                      "parameters": {"type": "object", "properties": {
                                          "to": {"type": "string"}, "subject": {"type": "string"},
                                          "body": {"type": "string"}}, "required": ["to", "subject", "body"]}}},
]


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def documents(tokenizer: Any, n_tokens: int) -> list[tuple[str, str]]:
    """(path, text) pieces of this repository's docs, `n_tokens` tokens of the model's tokenizer each
    (cut at token boundaries, so every turn grows the conversation by about as much)."""
    out = []
    for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "examples" / "agents").glob("*.md"))]:
        text = p.read_text(errors="replace")
        spans = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]
        for k in range(0, len(spans) - n_tokens // 2, n_tokens):
            piece = spans[k:k + n_tokens]
            out.append((f"{p.relative_to(ROOT)}#{k // n_tokens + 1}", text[piece[0][0]:piece[-1][1]]))
    return out


def conversation(tokenizer: Any, turns: int, doc_tokens: int) -> list[tuple[list[dict[str, Any]], dict[str, Any]]]:
    """(conversation before turn t, turn t's reply) for t = 1..turns; the last reply sends email."""
    docs = documents(tokenizer, doc_tokens)
    msgs: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
    out = []
    for t in range(1, turns + 1):
        if t < turns:
            path, text = docs[(t - 1) % len(docs)]
            call = {"id": f"call_{t}", "type": "function",
                    "function": {"name": "read_document", "arguments": json.dumps({"path": path})}}
        else:
            text = ""
            call = {"id": f"call_{t}", "type": "function", "function": {"name": "send_email", "arguments": json.dumps(
                {"to": "dana.reyes@northwind.example", "subject": "Document summaries",
                 "body": "Here are the summaries of the project documents."})}}
        reply = {"role": "assistant", "content": "", "tool_calls": [call]}
        out.append((list(msgs), reply))
        msgs += [reply, {"role": "tool", "tool_call_id": call["id"], "content": text}]
    return out


class Clock:
    def __init__(self) -> None:
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.process_time() - self.c0, time.perf_counter() - self.t0


def newest(store: Any) -> Any:
    return next(reversed(store._entries.values()))  # the cache just captured or extended


def growth(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    from auditor.attribution import capture
    from auditor.guard import Guard

    # room for one 8k-token conversation in float32 (~2.1 GB) and its extension by a turn
    guard = Guard(chat_template=CHAT_TEMPLATE, state_budget_bytes=int(2.5 * 1024**3))
    model = guard.auditor.model
    checkpoints = {int(x) for x in args.checkpoints.split(",") if x}
    turns = conversation(guard.auditor.tokenizer, args.turns, args.doc_tokens)
    rows: list[dict[str, Any]] = []
    out: dict[str, Any] = {"rows": rows, "sixteen_bit": []}
    attr_sum = 0.0
    for t, (msgs, reply) in enumerate(turns, 1):
        ids = guard.auditor.render(_traj(msgs, reply)).input_ids
        prev, shared = guard.states.longest_common(model, ids) if guard.states is not None else (None, 0)
        clock = Clock()
        [v] = guard.check_reply(msgs, reply, TOOLS)
        cpu, wall = clock.stop()
        cache = newest(guard.states)
        forward = cache.forward_cpu_seconds if v.new_tokens else 0.0
        attr = cpu - forward
        attr_sum += attr
        row = {"turn": t, "tokens": v.tokens, "new_tokens": v.new_tokens, "tool": v.tool_name, "status": v.status,
               "score": v.score, "argument": v.argument, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
               "capture_cpu_s": round(forward, 3), "attribution_cpu_s": round(attr, 3)}
        log(f"turn {t}: {v.tokens} tokens (+{v.new_tokens}), {v.tool_name} {v.status} score {v.score:.3f}, "
            f"{cpu:.1f} s CPU (capture {forward:.1f}, attribution {attr:.1f})")
        if t in checkpoints:
            full_cache, full_cpu, full_wall = _timed(lambda: capture(model, ids))
            row["full_capture_cpu_s"] = round(full_cpu, 3)
            row["full_recapture_cpu_s"] = round(full_cpu + attr, 3)
            row["full_reaudit_cpu_s"] = round(full_cpu + attr_sum, 3)
            row["ratio_vs_recapture"] = round(cpu / (full_cpu + attr), 4)
            row["ratio_vs_reaudit"] = round(cpu / (full_cpu + attr_sum), 4)
            row["capture_ratio"] = round(forward / full_cpu, 4)
            scale = float(max(x.float().abs().max() for x in full_cache.mid))
            row["max_state_diff_rel"] = float(max((a.float() - b.float()).abs().max() for a, b in zip(cache.mid, full_cache.mid))) / scale
            del full_cache
            log(f"  full capture {full_cpu:.1f} s: incremental / re-capture {row['ratio_vs_recapture']:.2f}, "
                f"/ re-audit {row['ratio_vs_reaudit']:.2f}")
            if t == min(checkpoints):
                out["checked_end_to_end"] = _end_to_end(guard, msgs, reply, v, row, attr_sum, log)
            if prev is not None and not args.no_16bit:
                for dtype in ("bfloat16", "float16"):
                    out["sixteen_bit"].append(_sixteen(guard, prev, shared, msgs, reply, v, dtype, t, log))
        del prev, cache
        rows.append(row)
    probe = capture(model, ids[:256])
    out["bytes_per_1k_tokens"] = {
        name: probe.nbytes() * 1000 // 256 if name == "float32" else capture(model, ids[:256], dtype=name).nbytes() * 1000 // 256
        for name in ("float32", "bfloat16", "float16")}
    per_token_16 = out["bytes_per_1k_tokens"]["bfloat16"] / 1000
    out["tokens_in_8GB_16bit"] = int(8 * 10**9 // per_token_16)
    out["state_store"] = guard.states.stats.as_dict()
    return out


def _traj(msgs: list[dict[str, Any]], reply: dict[str, Any]) -> Any:
    from auditor.guard.conversation import conversation as convo

    return convo(msgs, reply, TOOLS)[0]


def _timed(fn: Any) -> tuple[Any, float, float]:
    clock = Clock()
    out = fn()
    cpu, wall = clock.stop()
    return out, cpu, wall


def _end_to_end(guard: Any, msgs: Any, reply: Any, v: Any, row: dict[str, Any], attr_sum: float, log: Any) -> dict[str, Any]:
    """The first checkpoint run for real: a guard without a state cache, and a whole re-audit."""
    from auditor.guard import Guard

    fresh = Guard(chat_template=CHAT_TEMPLATE, state_budget_bytes=0)
    [w], cpu, _ = _timed(lambda: fresh.check_reply(msgs, reply, TOOLS))
    traj = _traj(msgs, reply)
    fresh.auditor.arguments = guard.auditor.arguments
    audit, audit_cpu, _ = _timed(lambda: fresh.auditor.audit(traj))
    out = {"turn": row["turn"], "full_guard_cpu_s": round(cpu, 3), "composed_recapture_cpu_s": row["full_recapture_cpu_s"],
           "full_reaudit_cpu_s": round(audit_cpu, 3), "composed_reaudit_cpu_s": row["full_reaudit_cpu_s"],
           "actions_reaudited": len(audit.actions), "score_full": w.score, "score_incremental": v.score,
           "same_status": w.status == v.status}
    log(f"  end to end at turn {row['turn']}: guard without states {cpu:.1f} s (composed {row['full_recapture_cpu_s']:.1f}), "
        f"re-audit of {len(audit.actions)} calls {audit_cpu:.1f} s (composed {row['full_reaudit_cpu_s']:.1f}); "
        f"score {w.score:.4f} vs {v.score:.4f}")
    return out


def _sixteen(guard: Any, prev: Any, shared: int, msgs: Any, reply: Any, v: Any, dtype: str, turn: int, log: Any) -> dict[str, Any]:
    """Judge turn `turn` from the previous turn's states stored in `dtype`, extended in `dtype`."""
    import torch

    from auditor.attribution import StateCache
    from auditor.guard import Guard

    dt = getattr(torch, dtype)
    head = prev.head(shared)
    cast = StateCache(input_ids=head.input_ids, adapter=head.adapter, dtype=dt, device=head.device, params=list(head.params))
    for name in ("resid", "mid", "queries", "keys", "values"):
        setattr(cast, name, [x.to(dt) for x in getattr(head, name)])
    cast.out_scale = None if head.out_scale is None else [x.to(dt) for x in head.out_scale]
    g = Guard(chat_template=CHAT_TEMPLATE, state_budget_bytes=4 * 1024**3, state_dtype=dtype)
    g.states.put(cast)
    [w] = g.check_reply(msgs, reply, TOOLS)
    ref = {d.segment_id: d.share for d in v.drivers}
    share_diff = max((abs(d.share - ref[d.segment_id]) for d in w.drivers if d.segment_id in ref), default=0.0)
    out = {"turn": turn, "dtype": dtype, "score": w.score, "score_float32": v.score,
           "score_abs_diff": abs(w.score - v.score), "max_driver_share_diff": share_diff,
           "same_status": w.status == v.status, "same_top_driver": [d.segment_id for d in w.drivers[:1]] == [d.segment_id for d in v.drivers[:1]],
           "new_tokens": w.new_tokens}
    log(f"  {dtype}: score {w.score:.4f} vs {v.score:.4f} (|diff| {out['score_abs_diff']:.2e}), share diff {share_diff:.2e}")
    return out


def proxy_overhead(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "examples" / "agents"))
    import openai
    from common import load_scenario, strict_tools, tool_call_regex  # type: ignore[import-not-found]
    from tool_agent import TOOL_BY_NAME, TOOLS as AGENT_TOOLS  # type: ignore[import-not-found]

    from auditor.guard import Guard
    from auditor.guard.proxy import GuardProxy

    server = None
    upstream = args.upstream
    if upstream is None:
        import importlib.util

        spec = importlib.util.spec_from_file_location("vllm_server", ROOT / "scripts" / "vllm_server.py")
        vllm_server = importlib.util.module_from_spec(spec)
        sys.modules["vllm_server"] = vllm_server
        spec.loader.exec_module(vllm_server)
        server = vllm_server.VLLMServer(log_path=ROOT / "out" / "vllm" / "bench-guard.log",
                                        pid_path=vllm_server.RUN_DIR / f"bench-guard-{os.getpid()}.pid")
        log("starting vLLM ...")
        server.start(wait=True, timeout=900)
        upstream = server.base_url
        log(f"vLLM healthy after {server.ready_after:.0f} s")
    sc = load_scenario("inbox_share")
    msgs = [{"role": "system", "content": sc.system}, {"role": "user", "content": sc.user}]
    step = sc.steps[0]
    tool_turn = dict(model="smollm2", messages=msgs, tools=AGENT_TOOLS, tool_choice="auto", temperature=0, seed=0,
                     max_tokens=step.max_tokens + 60, extra_body={"repetition_penalty": 1.15, "structured_outputs": {
                         "regex": tool_call_regex(TOOL_BY_NAME[step.tool], step.pin)}})
    text_turn = dict(model="smollm2", messages=msgs, tools=strict_tools(AGENT_TOOLS), tool_choice="none", temperature=0,
                     seed=0, max_tokens=40)
    guard = Guard(chat_template=CHAT_TEMPLATE)
    out: dict[str, Any] = {"upstream": "vLLM (scripts/vllm_server.py)" if server else upstream, "repeats": args.repeats}
    try:
        with GuardProxy(guard, upstream, port=0) as proxy:
            direct = openai.OpenAI(base_url=upstream, api_key="EMPTY", max_retries=0, timeout=600)
            via = openai.OpenAI(base_url=proxy.url, api_key="EMPTY", max_retries=0, timeout=600)
            for name, kw in (("text", text_turn), ("tool_call", tool_turn)):
                via.chat.completions.create(**kw)  # warm both paths (first capture, connections)
                d, p, verdicts = [], [], []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    direct.chat.completions.create(**kw)
                    d.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    r = via.chat.completions.create(**kw)
                    p.append(time.perf_counter() - t0)
                    verdicts += [x["status"] for x in (r.model_extra or {}).get("auditor_guard", {}).get("verdicts", [])]
                md, mp = statistics.median(d), statistics.median(p)
                out[name] = {"direct_s": [round(x, 3) for x in d], "proxy_s": [round(x, 3) for x in p],
                             "median_direct_s": round(md, 3), "median_proxy_s": round(mp, 3),
                             "overhead_ratio": round((mp - md) / md, 4), "verdicts": verdicts}
                log(f"proxy {name}: direct {md:.2f} s, via proxy {mp:.2f} s, overhead {(mp - md) / md:.2%} {verdicts}")
    finally:
        if server is not None:
            server.stop()
    return out


def _shipped_decide() -> str:
    """How the shipped policy judges (`decide`): the calibrated verdict, or the support rule."""
    from auditor.check.policy import default_policy

    return str(default_policy().decide)


#: What a results file without `decide` was measured under (the shipped policy before the verdict).
_DECIDE_BEFORE = "support"


def write_doc(results: dict[str, Any], path: Path) -> None:
    g, meta = results["growth"], results["meta"]
    decide = meta.get("decide", _DECIDE_BEFORE)
    lines = ["# Runtime guard benchmark", "",
             f"Model: {meta['model']}, FlashTrace 1 hop, the shipped policy of the run (decide = \"{decide}\"), "
             f"on {meta['device']} "
             f"({meta['threads']} torch thread). Reproduce with:", "", "```", meta["command"], "```", "",
             f"Times are process CPU seconds (the machine is shared: load average {meta['loadavg_start']} at the start, "
             f"{meta['loadavg_end']} at the end; the run took {meta['total_seconds'] / 60:.1f} min). Writes "
             "`benchmarks/results/guard.json` (every figure, wall times too) and this page.", "",
             "## Latency per turn: incremental vs full", "",
             "A MailPilot-style conversation grows a tool call and a 330-token document at a time; at each turn the "
             "guard judges the new call. *incremental*: the guard as shipped (the previous turn's states kept, only "
             "the new tokens forwarded). *full re-capture*: the same verdict with the whole conversation captured "
             "again (that capture, timed at the turn, plus the same attribution work). *full re-audit*: auditing the "
             "conversation again after each turn, as `audit check` does after the fact (the whole capture plus "
             "every call's attribution). See the script's docstring for how each is measured.", "",
             "| turn | tokens | new | call | verdict | incremental s | of which capture s | full capture s | "
             "capture: incr. / full | incr. / full re-capture | incr. / full re-audit |",
             "|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in g["rows"]:
        full = r.get("full_capture_cpu_s")
        extra = ["", "", "", ""] if full is None else [
            f"{full:.1f}", "{:.2f}x".format(r["capture_ratio"]), "{:.2f}x".format(r["ratio_vs_recapture"]),
            "{:.2f}x".format(r["ratio_vs_reaudit"])]
        lines.append(f"| {r['turn']} | {r['tokens']:,} | {r['new_tokens']:,} | {r['tool']} | {r['status']} "
                     f"({r['score']:.2f}) | {r['cpu_s']:.1f} | {r['capture_cpu_s']:.1f} | " + " | ".join(extra) + " |")
    late = [r for r in g["rows"] if "full_capture_cpu_s" in r and r["turn"] >= 10]
    if late:
        lines += ["", f"From turn 10 on (checkpoints {', '.join(str(r['turn']) for r in late)}): the incremental guard "
                  f"takes {min(r['ratio_vs_reaudit'] for r in late):.2f}-{max(r['ratio_vs_reaudit'] for r in late):.2f}x "
                  "the time of a full re-audit and "
                  f"{min(r['ratio_vs_recapture'] for r in late):.2f}-{max(r['ratio_vs_recapture'] for r in late):.2f}x "
                  "that of a full re-capture of the same judgement; its capture alone is "
                  f"{min(r['capture_ratio'] for r in late):.2f}-{max(r['capture_ratio'] for r in late):.2f}x a full "
                  "capture. What incremental capture cannot remove is the attribution itself: each FlashTrace hop "
                  "reads every token before the call (the attention rows of the call's tokens and, in hop 1, of the "
                  "earlier calls' tokens, over the whole prefix), so against a re-capture of the same judgement the "
                  "ratio is bounded below by the attribution's share. The last turn is a `send_email`, judged by its "
                  "call and by its decisive `to` argument: two targets, twice the attribution."]
    if decide == "support":
        lines += ["", "The verdicts are the support rule's (`decide = \"support\"`, the shipped policy when this was "
                  "measured), as `audit check` gave them: it judges every `read_document` call as a whole call, and "
                  "each one is driven mostly by the documents already read, so it is flagged (an agent that reads "
                  "freely would list its read-only tools under the policy's `ignore`, as tests/e2e/test_vllm_guard.py "
                  "does); this page measures what judging costs. **Since then the shipped policy decides by the "
                  "calibrated verdict**, which allows these reads and also measures causal deltas: each judged turn "
                  "forwards the conversation again once per variant (the request neutralised, the top data "
                  "drivers removed), from the user's request on, so a judged turn costs several times the "
                  "incremental figures above; `python benchmarks/bench_guard.py --turns 5 --checkpoints 5 "
                  "--no-16bit --out /tmp/guard.json --doc /tmp/guard.md` measures it (not rerun here at 20 turns)."]
    else:
        lines += ["", f"The verdicts are the shipped policy's (`decide = \"{decide}\"`), as `audit check` would give "
                  "them; under the calibrated verdict each judged turn also measures causal deltas, forwarding the "
                  "conversation once per variant (the request neutralised, the top data drivers removed) from the "
                  "user's request on: that is most of a judged turn's time at length."]
    e = g.get("checked_end_to_end")
    if e:
        lines += ["", f"Checked end to end at turn {e['turn']}: a guard without a state cache took {e['full_guard_cpu_s']:.1f} s "
                  f"(composed: {e['composed_recapture_cpu_s']:.1f} s), a whole re-audit of its {e['actions_reaudited']} "
                  f"calls {e['full_reaudit_cpu_s']:.1f} s (composed: {e['composed_reaudit_cpu_s']:.1f} s); its score "
                  f"{e['score_full']:.4f} vs {e['score_incremental']:.4f} incremental. The composed figures sum "
                  "per-turn times that each carry the guard's fixed work (rendering, the check), so they run a little "
                  "above a measured full run: ratios against them are that much lower than against end-to-end runs."]
    lines += ["", "## State-cache memory and 16-bit storage", "",
              "| storage | bytes per 1k tokens |", "|---|---:|"]
    for k, v in g["bytes_per_1k_tokens"].items():
        lines.append(f"| {k} | {v / 2**20:,.0f} MiB |")
    lines += ["", f"In 16-bit, {g['tokens_in_8GB_16bit']:,} tokens of states fit in 8 GB (32k tokens: "
              f"{32768 * g['bytes_per_1k_tokens']['bfloat16'] / 1000 / 10**9:.1f} GB; the model's weights and a "
              "forward's working memory come on top).", ""]
    if g["sixteen_bit"]:
        lines += ["Judging a turn from the previous turn's states stored in 16-bit and extended in 16-bit, against float32:", "",
                  "| turn | storage | score | float32 score | abs. score diff | max driver share diff | same verdict |",
                  "|---:|---|---:|---:|---:|---:|---|"]
        for s in g["sixteen_bit"]:
            lines.append(f"| {s['turn']} | {s['dtype']} | {s['score']:.4f} | {s['score_float32']:.4f} | "
                         f"{s['score_abs_diff']:.1e} | {s['max_driver_share_diff']:.1e} | "
                         f"{'yes' if s['same_status'] else 'NO'} |")
        worst = max(g["sixteen_bit"], key=lambda s: s["score_abs_diff"])
        lines += ["", f"Largest score difference 16-bit storage caused: {worst['score_abs_diff']:.1e} "
                  f"({worst['dtype']}, turn {worst['turn']})."]
    p = results.get("proxy")
    lines += ["", "## Proxy overhead", ""]
    if p:
        lines += [f"`audit guard`'s proxy in front of {p['upstream']} (wall seconds, median of {p['repeats']} "
                  "requests each way, alternating; the upstream generates on the same CPUs):", "",
                  "| benign turn | upstream alone s | through the proxy s | overhead / upstream latency | verdicts |",
                  "|---|---:|---:|---:|---|"]
        for name in ("text", "tool_call"):
            r = p[name]
            lines.append(f"| {name.replace('_', ' ')} | {r['median_direct_s']:.2f} | {r['median_proxy_s']:.2f} | "
                         f"{r['overhead_ratio']:.1%} | {', '.join(sorted(set(r['verdicts']))) or 'none (no tool call)'} |")
        lines += ["", "A text turn is forwarded without judging; a tool-call turn is judged before it is returned "
                  "(the repeats of one request find its states in the cache, so their overhead is the attribution)."]
    else:
        lines.append("Not measured in this run (pass --vllm, or --upstream URL).")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--doc-tokens", type=int, default=330, help="tokens per document (a turn adds ~390 with its call)")
    parser.add_argument("--checkpoints", default="5,10,15,20", help="turns where the full capture is timed")
    parser.add_argument("--no-16bit", action="store_true")
    parser.add_argument("--vllm", action="store_true", help="start vLLM and measure the proxy's overhead")
    parser.add_argument("--upstream", default=None, help="measure the proxy in front of this running server instead")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--doc", default=str(DOC))
    parser.add_argument("--doc-only", action="store_true", help="rewrite the page from the results JSON (no run)")
    args = parser.parse_args(argv)
    if args.doc_only:
        write_doc(json.loads(Path(args.out).read_text()), Path(args.doc))
        return 0
    if args.quick:
        args.turns, args.doc_tokens, args.checkpoints = 4, 80, "2,4"

    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    load_start = _loadavg()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {msg}", flush=True)

    results: dict[str, Any] = {"growth": growth(args, log)}
    if args.vllm or args.upstream:
        results["proxy"] = proxy_overhead(args, log)
    results["meta"] = {
        "model": "SmolLM2-135M-Instruct (embedded, float32)", "device": "cpu", "threads": args.threads,
        "clock": "cpu", "torch": torch.__version__, "loadavg_start": load_start, "loadavg_end": _loadavg(),
        "total_seconds": round(time.perf_counter() - started, 1),
        "command": COMMAND if (args.vllm and not args.quick) else "python benchmarks/bench_guard.py " + " ".join(argv or sys.argv[1:]),
        "turns": args.turns, "tokens_per_document": args.doc_tokens, "chat_template": "examples/agents/chat_template.jinja",
        "decide": _shipped_decide(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    write_doc(results, Path(args.doc))
    log(f"wrote {args.out} and {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
