"""Benchmark: the DuckDB store. Ingest speed for spans and audits, and the driver queries over a
million attribution rows.

- ``spans``: `Store.add_spans` on agent-like SpanRecords (GenAI attributes, ~1 KB of message
  content each) in batches of 512 as the receiver hands them over, then the same spans again
  (the idempotent path: nothing new is written).
- ``audits``: `Store.record_audits` on model-free audits (`auditor.testing.audits`, with
  per-argument attributions) until the attributions table holds ``--attributions`` rows; one
  transaction per run. Each audit is then judged by the shipped policy (`check_audit`) and its
  verdicts recorded (`Store.record_verdicts`), as `audit trace` and `audit check --db` do, so the
  verdict views (``unsupported_actions``) are measured full; judging and recording the verdicts
  is outside the timed ingest (its time is reported on its own).
- ``ingest``: the peak memory of `audit trace FILE --no-attribute` on 5, 20 and 50 MB span files,
  each in a fresh process, against the whole file read at once (`ingest_memory.py`).
- ``queries``: the questions users ask, on a file database: which tool outputs drove send_email
  (``action_drivers``), the top drivers of one action, ``tool_influence``, ``unsupported_actions``,
  and `action_export` for `audit show`. Median of ``--repeat`` runs after a warm-up.

    python benchmarks/bench_store.py            # writes benchmarks/results/store.json
                                                # and docs/benchmarks/store.md
    python benchmarks/bench_store.py --quick    # smaller, for a smoke run (writes nothing)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from auditor.audit.schema import TrajectoryAudit
from auditor.check import check_audit, default_policy
from auditor.report.export import action_export
from auditor.store import Store
from auditor.testing.audits import synthetic_audit, synthetic_run, synthetic_trajectory
from ingest_memory import bench_ingest, markdown as ingest_markdown

ROOT = Path(__file__).resolve().parent.parent

CONTENT = ("You are a careful coding agent. Read the file, then fix the failing test. " * 8)[:512]

QUERIES = {
    "send_email_drivers": (
        "SELECT trajectory_id, action_id, driver_tool, share FROM action_drivers "
        "WHERE tool_name = 'send_email' AND driver_kind = 'tool_output' AND rank <= 3 "
        "ORDER BY share DESC LIMIT 100"),
    "one_action_top3": (
        "SELECT rank, driver_kind, driver_label, share FROM action_drivers "
        "WHERE run_id = '{run}' AND trajectory_id = '{traj}' AND action_id = '{action}' AND rank <= 3 "
        "ORDER BY rank"),
    "tool_influence": "SELECT * FROM tool_influence ORDER BY total_share DESC",
    "unsupported_count": "SELECT count(*) FROM unsupported_actions",
}


def _span(trace: int, i: int):
    from auditor.collectors.spans import SpanRecord

    return SpanRecord(
        trace_id=f"{trace:032x}", span_id=f"{trace % 65536:04x}{i:012x}", parent_span_id=None if i == 0 else
        f"{trace % 65536:04x}{0:012x}", name="chat smollm2" if i % 3 else "execute_tool read_file", kind="CLIENT",
        start_time_unix_nano=1_767_225_600_000_000_000 + i * 1000, end_time_unix_nano=1_767_225_600_100_000_000 + i,
        attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "smollm2",
                    "gen_ai.usage.input_tokens": 900 + i % 50, "gen_ai.usage.output_tokens": 40,
                    "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text",
                                                                                     "content": CONTENT}]}]),
                    "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text",
                                                                                          "content": CONTENT[:256]}]}])},
        resource={"service.name": "agent"}, scope="bench", source="bench")


class Clock:
    """Wall and CPU (all threads of this process) seconds of a block: the machine may be shared,
    so the CPU figure is the steadier one."""

    def __enter__(self) -> "Clock":
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c

    def rates(self, n: int, unit: str) -> dict:
        return {"seconds": round(self.wall, 3), "cpu_seconds": round(self.cpu, 3),
                f"{unit}_per_second": round(n / self.wall), f"{unit}_per_cpu_second": round(n / self.cpu)}


def bench_spans(tmp: Path, n: int, batch: int = 512) -> dict:
    spans = [_span(k // 20, k % 20) for k in range(n)]  # traces of 20 spans
    with Store(tmp / "spans.duckdb") as store:
        with Clock() as first:
            added = sum(store.add_spans(spans[i:i + batch]) for i in range(0, n, batch))
        with Clock() as second:
            again = sum(store.add_spans(spans[i:i + batch]) for i in range(0, n, batch))
        traces = store.query("SELECT count(*) FROM traces")[1][0][0]
    with Store(tmp / "bulk.duckdb") as store, Clock() as bulk:
        bulk_added = store.add_spans(spans)
    assert added == n and again == 0 and bulk_added == n, (added, again, bulk_added)
    return {"spans": n, "batch": batch, "traces": traces, "batched": first.rates(n, "spans"),
            "duplicates": second.rates(n, "spans"), "one_call": bulk.rates(n, "spans")}


def _audits(target_rows: int, runs: int) -> tuple[list[list[TrajectoryAudit]], int]:
    """Audits grouped by run, ~target_rows attribution rows in all. A few distinct shapes are
    audited for real (synthetic scoring); the rest are copies under new trajectory ids."""
    # with per-argument attributions, as `Auditor` records them (the argument tables and views are filled)
    shapes = [synthetic_audit(synthetic_trajectory(k, tools=5, actions=40, words=12), arguments=True) for k in range(8)]
    per_traj = [sum(len(a.drivers) for a in s.actions) for s in shapes]
    n_traj = max(runs, round(target_rows / statistics.mean(per_traj)))
    out: list[list[TrajectoryAudit]] = [[] for _ in range(runs)]
    rows = 0
    for i in range(n_traj):
        r = i % runs
        base = shapes[i % len(shapes)]
        traj = base.trajectory.model_copy(update={"id": f"bench-{r}-{i // runs}"})
        run = synthetic_run(f"run-{r}", model="synthetic", method="flashtrace")
        out[r].append(base.model_copy(update={"trajectory": traj, "run": run}))
        rows += per_traj[i % len(shapes)]
    return out, rows


def bench_audits(db: Path, target_rows: int, runs: int) -> dict:
    t0 = time.perf_counter()
    groups, rows = _audits(target_rows, runs)
    build = time.perf_counter() - t0
    policy = default_policy()
    judged: dict[str, list] = {}  # the copies of a shape share its actions, hence its verdicts
    with Store(db) as store:
        with Clock() as clock:
            for group in groups:
                store.record_audits(group)
        with Clock() as verdict_clock:  # not part of the ingest rate: what the check adds on top
            for group in groups:
                for audit in group:
                    shape = audit.trajectory.model_copy(update={"id": "shape"}).model_dump_json()
                    if shape not in judged:
                        judged[shape] = check_audit(audit, policy).verdicts
                    store.record_verdicts(audit.run.run_id, audit.trajectory.id, judged[shape], policy=policy)
        counts = store.counts()
    assert counts["attributions"] == rows
    assert counts["action_verdicts"] == counts["action_audits"], counts
    last = groups[-1][-1]
    target = {"run": last.run.run_id, "traj": last.trajectory.id, "action": last.actions[20].action.id}
    return {"target": target, "runs": runs, "trajectories": counts["audits"], "actions": counts["action_audits"],
            "attribution_rows": rows, "token_score_lists": counts["token_scores"],
            "segments": counts["segments"], **clock.rates(rows, "attribution_rows"), "build_seconds": round(build, 2),
            "verdicts": counts["action_verdicts"], "verdict_seconds": round(verdict_clock.wall, 2),
            "db_megabytes": round(db.stat().st_size / 2**20, 1)}


def bench_queries(db: Path, repeat: int, target: dict) -> dict:
    out = {}
    with Store(db, read_only=True) as store:
        for name, sql in QUERIES.items():
            sql = sql.format(**target)
            store.query(sql)  # warm-up
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                cols, rows = store.query(sql)
                times.append(time.perf_counter() - t0)
            out[name] = {"median_ms": round(statistics.median(times) * 1000, 1),
                         "max_ms": round(max(times) * 1000, 1), "rows": len(rows), "sql": sql}
            if len(rows) == 1 and len(cols) == 1:  # a count: what it counted
                out[name]["value"] = rows[0][0]
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            action_export(store, target["action"], run_id=target["run"], trajectory_id=target["traj"])
            times.append(time.perf_counter() - t0)
        out["action_export"] = {"median_ms": round(statistics.median(times) * 1000, 1),
                                "max_ms": round(max(times) * 1000, 1), "rows": 1,
                                "sql": "action_export(store, action_id) (what `audit show` reads)"}
    return out


def run(spans: int, attributions: int, runs: int, repeat: int, ingest_mb: list[float] | None = None,
        whole_max_mb: float = 50) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ingest = bench_ingest(Path(tmp), ingest_mb, whole_max_mb) if ingest_mb else None
        span_result = bench_spans(Path(tmp), spans)
        db = Path(tmp) / "audits.duckdb"
        audit_result = bench_audits(db, attributions, runs)
        query_result = bench_queries(db, repeat, audit_result.pop("target"))
    return {
        "benchmark": "store",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "duckdb": duckdb.__version__, "load_average": [round(x, 1) for x in os.getloadavg()]},
        "spans": span_result, "audits": audit_result, "queries": query_result,
        **({"ingest": ingest} if ingest else {}),
    }


def markdown(res: dict) -> str:
    s, a, q, m = res["spans"], res["audits"], res["queries"], res["machine"]

    def rate(r: dict, unit: str) -> str:
        return f"**{r[unit + '_per_second']:,}**/s wall, {r[unit + '_per_cpu_second']:,}/s CPU"

    lines = [
        "# Store benchmark",
        "",
        "Produced by `python benchmarks/bench_store.py` (raw figures: `benchmarks/results/store.json`).",
        f"Machine: {m['cpus']} CPUs, {m['platform']}, Python {m['python']}, DuckDB {m['duckdb']}; a file",
        "database in a temporary directory. The machine was shared (load average "
        f"{', '.join(map(str, m.get('load_average', [])))} at the end), so wall-clock rates are a floor;",
        "the CPU rates (work done per CPU-second of this process, all threads) are the steadier figure.",
        "",
        "## Ingest",
        "",
        "| what | volume | wall s | CPU s | rate |",
        "|---|---|---|---|---|",
        f"| `add_spans`, new spans, batches of {s['batch']} as the receiver hands them over (~1 KB GenAI "
        f"attributes each) | {s['spans']:,} spans in {s['traces']:,} traces | {s['batched']['seconds']} | "
        f"{s['batched']['cpu_seconds']} | {rate(s['batched'], 'spans')} |",
        f"| `add_spans`, the same spans again (idempotent: nothing written) | {s['spans']:,} spans | "
        f"{s['duplicates']['seconds']} | {s['duplicates']['cpu_seconds']} | {rate(s['duplicates'], 'spans')} |",
        f"| `add_spans`, all in one call | {s['spans']:,} spans | {s['one_call']['seconds']} | "
        f"{s['one_call']['cpu_seconds']} | {rate(s['one_call'], 'spans')} |",
        f"| `record_audits`, one transaction per run, Arrow bulk inserts | {a['attribution_rows']:,} attribution "
        f"rows ({a['actions']:,} actions, {a['trajectories']:,} trajectories, {a['runs']} runs) | {a['seconds']} | "
        f"{a['cpu_seconds']} | {rate(a, 'attribution_rows')} |",
        "",
        f"The audit database holds {a['segments']:,} segments and {a['token_score_lists']:,} token-score lists "
        f"(one per action) and {a.get('verdicts', 0):,} verdicts (every action judged by the shipped policy and "
        f"recorded with `record_verdicts`, one transaction per trajectory, {a.get('verdict_seconds', 0)} s, outside "
        f"the timed ingest); it takes {a['db_megabytes']} MB on disk.",
        "",
        f"## Queries over {a['attribution_rows']:,} attribution rows",
        "",
        "Read-only connection, as `audit query` opens it; median of repeated runs after a warm-up.",
        "",
        "| question | median ms | max ms | rows |",
        "|---|---|---|---|",
    ]
    for name, r in q.items():
        rows = f"{r['rows']} (= {r['value']:,})" if isinstance(r.get("value"), int) else r["rows"]
        lines.append(f"| {name}: `{r['sql']}` | **{r['median_ms']}** | {r['max_ms']} | {rows} |")
    if res.get("ingest"):
        lines += ["", *ingest_markdown(res["ingest"])]
    lines += ["", "Re-run: `python benchmarks/bench_store.py` (a few minutes; `--quick` for a smoke run, "
                  "`--ingest-mb 5 20 50` sets the span files).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--spans", type=int, default=100_000)
    p.add_argument("--attributions", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="small sizes; prints, writes nothing")
    p.add_argument("--ingest-mb", type=float, nargs="*", default=[5, 20, 50],
                   help="span files to import, MB (none: skip the ingest section)")
    p.add_argument("--whole-max-mb", type=float, default=50, help="largest file also imported whole, for comparison")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "store.json")
    p.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks" / "store.md")
    args = p.parse_args(argv)
    if args.quick:
        res = run(2_000, 20_000, 4, 3, [1], 1)
        print(markdown(res))
        return res
    res = run(args.spans, args.attributions, args.runs, args.repeat, args.ingest_mb, args.whole_max_mb)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(markdown(res))
    print(markdown(res))
    return res


if __name__ == "__main__":
    main()
