"""Fuzz benchmark: malformed input of every kind against the readers and the receivers.

For each kind, inputs are generated (seeded) until at least ``--malformed`` of them are malformed
(`fuzzing.py`: each mutation has a known verdict: kept, kept with a warning, rejected at its
place, or anything but a crash), then:

- trajectory lines and span dump lines: one file each, read by `load_path` (spans assembled
  into trajectories too), then `audit trace FILE --no-attribute --json` in a subprocess (the end
  to end contract: no traceback, exit 3 when something was skipped, every loaded record stored);
- OTLP JSON bodies and OTLP protobuf bodies: each POSTed to a running `OTLPReceiver`
  (``audit collect``'s OTLP/HTTP side) writing a JSONL file and a sink;
- gRPC: each protobuf body sent as raw bytes to `OTLPGrpcReceiver`'s Export.

Counted per kind: crashes (an exception out of a reader, an "internal error" issue, a 5xx or
INTERNAL/UNKNOWN status, a traceback, a loaded record that cannot be written), valid records
lost (not loaded or stored exactly once), wrong verdicts (a bad record loaded, not reported at
its place, or a wrong status code or partial-success count). What the readers and receivers
accepted is then stored in a DuckDB store; a failure there is counted apart (store failures).

    python benchmarks/bench_fuzz.py                 # writes benchmarks/results/fuzz.json and docs/benchmarks/fuzz.md
    python benchmarks/bench_fuzz.py --malformed 300 # a quick run
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import fuzzing
from auditor.collectors.loading import load_path
from auditor.collectors.spans import SpanRecord

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("trajectory lines", "span dump lines", "OTLP JSON bodies", "OTLP protobuf bodies", "gRPC")


class ListSink:
    def __init__(self) -> None:
        self.spans: list[SpanRecord] = []
        self.lock = threading.Lock()

    def __call__(self, spans: Any) -> None:
        with self.lock:
            self.spans.extend(spans)


def _row(kind: str, inputs: int, malformed: int, f: fuzzing.Failures, seconds: float, **extra: Any) -> dict:
    return {"kind": kind, "inputs": inputs, "malformed": malformed, "valid": inputs - malformed,
            "crashes": len(f.crashes), "valid_lost": len(f.lost), "wrong": len(f.wrong),
            "examples": f.all()[:5], "seconds": round(seconds, 2), **extra}


def _generate(target: int, make: Callable[[int], tuple[Any, fuzzing.Verdict]]) -> list[tuple[Any, fuzzing.Verdict]]:
    out: list[tuple[Any, fuzzing.Verdict]] = []
    bad = 0
    while bad < target:
        case = make(len(out))
        out.append(case)
        bad += case[1].kind != "keep"
    return out


def _store_check(tmp: Path, name: str, trajectories: list = (), spans: list = ()) -> str | None:
    """Store what was accepted; the error, if the store refuses it (the store is not fuzzed here)."""
    from auditor.store import Store

    try:
        with Store(tmp / f"{name}.duckdb") as store:
            for k in range(0, len(spans), 2000):
                store.add_spans(spans[k:k + 2000])
            for k in range(0, len(trajectories), 500):
                store.add_trajectories(trajectories[k:k + 500])
    except Exception as exc:  # noqa: BLE001 - reported, not fixed here
        return f"{type(exc).__name__}: {str(exc)[:300]}"
    return None


def _cli_check(path: Path, db: Path, loaded: int) -> tuple[list[str], int]:
    """`audit trace FILE --no-attribute --json`: no traceback, exit 3, every loaded trajectory stored."""
    proc = subprocess.run([sys.executable, "-c", "from auditor.cli import main; main()", "trace", str(path),
                           "--no-attribute", "--json", "--db", str(db)], capture_output=True, text=True, timeout=1200)
    problems = []
    if "Traceback" in proc.stderr or "Traceback" in proc.stdout:
        problems.append("traceback: " + proc.stderr[-600:])
    if proc.returncode != 3:
        problems.append(f"exit {proc.returncode}, expected 3: {proc.stderr[-300:]}")
    else:
        out = json.loads(proc.stdout)
        if out["trajectories"] != loaded:
            problems.append(f"audit trace stored {out['trajectories']} trajectories, the reader loaded {loaded}")
    return problems, proc.returncode


def run_files(kind: str, target: int, seed: int, tmp: Path, cli: bool) -> dict:
    rng = random.Random(seed)
    if kind == "trajectory lines":
        data, cases = fuzzing.trajectory_cases(rng, target, malformed=True)
        path = tmp / "trajectories.jsonl"
        check = fuzzing.check_trajectory_load
    else:
        data, cases = fuzzing.span_cases(rng, target, malformed=True)
        path = tmp / "spans.jsonl"
        check = fuzzing.check_span_load
    bad = sum(c[1].kind != "keep" for c in cases)
    path.write_bytes(data)
    t0 = time.perf_counter()
    f = fuzzing.Failures()
    try:
        result = load_path(path)
    except Exception:  # noqa: BLE001 - the thing being measured
        f.crashes.append(traceback.format_exc()[-500:])
        return _row(kind, len(cases), bad, f, time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    f.extend(check(str(path), cases, result))
    store = _store_check(tmp, kind.split()[0], result.trajectories, result.spans)
    extra: dict[str, Any] = {"loaded_trajectories": len(result.trajectories), "loaded_spans": len(result.spans),
                             "issues": len(result.issues), "store_failure": store}
    if cli:
        problems, rc = _cli_check(path, tmp / f"cli-{kind.split()[0]}.duckdb", len(result.trajectories))
        f.crashes += [p for p in problems if p.startswith("traceback")]
        f.wrong += [p for p in problems if not p.startswith("traceback")]
        extra["cli_exit_code"] = rc
    return _row(kind, len(cases), bad, f, seconds, **extra)


def run_http(kind: str, target: int, seed: int, tmp: Path) -> dict:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    from auditor.collectors.receiver import OTLPReceiver

    rng = random.Random(seed)
    as_json = kind == "OTLP JSON bodies"

    def make(i: int) -> tuple[Any, fuzzing.Verdict]:
        doc = fuzzing.export(rng, i)
        sent = len(fuzzing.export_spans(doc))
        if as_json:
            body, verdict = fuzzing.mutate_export(rng, doc)
            return (body, sent), fuzzing.http_verdict_for_json(verdict)
        body, verdict = fuzzing.mutate_protobuf(rng, doc)
        return (body, sent), verdict

    cases = _generate(target, make)
    sink = ListSink()
    f = fuzzing.Failures()
    ctype = "application/json" if as_json else "application/x-protobuf"
    t0 = time.perf_counter()
    with OTLPReceiver(port=0, jsonl_path=tmp / f"{kind.split()[1]}.jsonl", sink=sink) as rec:
        conn = http.client.HTTPConnection("127.0.0.1", rec.port, timeout=30)
        for i, ((body, sent), verdict) in enumerate(cases):
            before = len(sink.spans)
            try:
                conn.request("POST", "/v1/traces", body=body, headers={"Content-Type": ctype})
                resp = conn.getresponse()
                raw, status = resp.read(), resp.status
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                f.crashes.append(f"request {i} ({verdict.what}): no answer: {exc}")
                conn.close()
                continue
            rejected, message = 0, ""
            if status == 200 and as_json:
                partial = json.loads(raw).get("partialSuccess", {})
                rejected, message = int(partial.get("rejectedSpans", 0)), partial.get("errorMessage", "")
            elif status == 200:
                partial = ExportTraceServiceResponse.FromString(raw).partial_success
                rejected, message = partial.rejected_spans, partial.error_message
            else:
                message = raw.decode("utf-8", "replace")
            present = fuzzing.present_spans(body) if as_json else fuzzing.protobuf_present(body)
            rec.writer.flush(30)  # with a JSONL file the sink stores behind the acknowledgement: let it catch up
            f.extend(fuzzing.check_answer(verdict, status, rejected, message, sink.spans[before:], present, sent,
                                          f"request {i} ({verdict.what})"))
        conn.close()
    seconds = time.perf_counter() - t0
    stored, issues = _read_back(rec.jsonl_path)
    if stored != len(sink.spans) or issues:
        f.wrong.append(f"the JSONL file holds {stored} spans, the sink {len(sink.spans)}; reading it back: "
                       f"{[str(i) for i in issues[:3]]}")
    store = _store_check(tmp, kind.split()[1], spans=sink.spans)
    bad = sum(v.kind != "keep" for _, v in cases)
    return _row(kind, len(cases), bad, f, seconds, stored_spans=len(sink.spans), store_failure=store,
                requests_per_second=round(len(cases) / seconds))


def _read_back(path: Path) -> tuple[int, list]:
    """What the receiver wrote, read back: every span must come back (file == sink)."""
    from auditor.collectors.readers import read_otlp_json

    spans, issues = read_otlp_json(path)
    return len(spans), issues


def run_grpc(target: int, seed: int, tmp: Path) -> dict:
    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    from auditor.collectors.grpc_receiver import OTLPGrpcReceiver

    rng = random.Random(seed)

    def make(i: int) -> tuple[Any, fuzzing.Verdict]:
        doc = fuzzing.export(rng, i)
        body, verdict = fuzzing.mutate_protobuf(rng, doc)
        return (body, len(fuzzing.export_spans(doc))), verdict

    cases = _generate(target, make)
    sink = ListSink()
    f = fuzzing.Failures()
    t0 = time.perf_counter()
    with OTLPGrpcReceiver(port=0, sink=sink) as rec, grpc.insecure_channel(rec.address) as channel:
        call = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                                   request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString)
        for i, ((body, sent), verdict) in enumerate(cases):
            before = len(sink.spans)
            rejected, message = 0, ""
            try:
                response = call(body, timeout=30)
                status = 200
                rejected, message = response.partial_success.rejected_spans, response.partial_success.error_message
            except grpc.RpcError as exc:
                code = exc.code()
                status = 400 if code == grpc.StatusCode.INVALID_ARGUMENT else 500
                message = f"{code.name}: {exc.details()}"
            f.extend(fuzzing.check_answer(verdict, status, rejected, message, sink.spans[before:],
                                          fuzzing.protobuf_present(body), sent, f"call {i} ({verdict.what})"))
    seconds = time.perf_counter() - t0
    store = _store_check(tmp, "grpc", spans=sink.spans)
    bad = sum(v.kind != "keep" for _, v in cases)
    return _row("gRPC", len(cases), bad, f, seconds, stored_spans=len(sink.spans), store_failure=store,
                requests_per_second=round(len(cases) / seconds))


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 1)
    except OSError:
        return None


def run(malformed: int = 10_000, seed: int = 0, cli: bool = True) -> dict:
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for k, kind in enumerate(KINDS):
            if kind in ("trajectory lines", "span dump lines"):
                rows.append(run_files(kind, malformed, seed + k, tmp, cli))
            elif kind == "gRPC":
                rows.append(run_grpc(malformed, seed + k, tmp))
            else:
                rows.append(run_http(kind, malformed, seed + k, tmp))
            r = rows[-1]
            print(f"{kind:22} {r['inputs']:6} inputs {r['malformed']:6} malformed  crashes {r['crashes']}  "
                  f"lost {r['valid_lost']}  wrong {r['wrong']}  store {r.get('store_failure') or 'ok'}  "
                  f"{r['seconds']:.1f} s", flush=True)
    return {"malformed_per_kind": malformed, "seed": seed, "rows": rows,
            "total_seconds": round(time.perf_counter() - started, 1), "load_before": _load(),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}}


def markdown(res: dict, command: str) -> str:
    lines = [
        "# Fuzz benchmark: malformed input against the readers and receivers",
        "",
        "Seeded malformed inputs of each kind, each with a known verdict (kept, kept with a warning, "
        "rejected at its place, or anything but a crash: `benchmarks/fuzzing.py`), against `load_path` "
        "(and `audit trace --no-attribute` on the same files) and against running OTLP/HTTP and OTLP/gRPC "
        "receivers. The same generators drive the Hypothesis tests (`tests/collectors/test_fuzz_*.py`).",
        "",
        "Reproduce:",
        "",
        "```",
        command,
        "```",
        "",
        "(writes `benchmarks/results/fuzz.json` and this page).",
        "",
        "| input | inputs | malformed | crashes | valid records lost | wrong verdicts / status codes | store failures | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        lines.append(f"| {r['kind']} | {r['inputs']:,} | {r['malformed']:,} | **{r['crashes']}** | **{r['valid_lost']}** | "
                     f"**{r['wrong']}** | {1 if r.get('store_failure') else 0} | {r['seconds']:.1f} |")
    lines += [
        "",
        "- **crashes**: an exception out of a reader, an \"internal error\" issue (a reader's last-resort "
        "catch), a 5xx or gRPC INTERNAL/UNKNOWN answer, a traceback from `audit trace`, or an accepted record "
        "that cannot be written as UTF-8 JSON within the nesting limit.",
        "- **valid records lost**: a valid trajectory or span (including ones with base64 or `0X`-prefixed base64 "
        "ids, keys reordered, U+2028 in text, or a repaired lone surrogate) not loaded or stored exactly once, "
        "or a valid trace not assembled into its trajectory.",
        "- **wrong verdicts / status codes**: a bad record loaded, or not reported at its line (and span id and "
        "field where the mutation names them); a status other than 200/400 or the wrong one; a partial-success "
        "count that does not match; `audit trace` not exiting 3 or storing a different number of trajectories.",
        "- **store failures**: everything accepted, stored in a DuckDB store afterwards (the store is not what is "
        "fuzzed here; a failure would be reported to its owner).",
        "- **seconds**: reading the file, or sending every request and getting its answer; the checks, the "
        f"store and the `audit trace` runs come on top (the whole run: {res['total_seconds']:.0f} s).",
        "",
        "The mutations: a field of the wrong JSON type, integers past 32 or 64 bits, times that are NaN, "
        "infinite, negative or past 2^63-1 ns, ids of the wrong length or alphabet, objects and lists nested "
        "64 to 5,000 levels deep, lone surrogates, invalid UTF-8 (files: a warning; OTLP/JSON bodies: 400), "
        "truncated lines and bodies, repeated trajectory ids (same or other content), bad resources; valid "
        "variants that must load (base64 ids, `0X`-prefixed base64, `0x`-prefixed hex, reordered keys, "
        "U+2028 and other line separators in text); and random values at random places or random byte damage.",
        "",
        f"Machine: {res['machine']['cpus']} CPUs, Python {res['machine']['python']}, {res['machine']['platform']}; "
        f"seed {res['seed']}; 1-minute load average {res['load_before']} before the run (other work shared the "
        "machine when it is above the CPU count: the seconds are then longer, the counts the same).",
    ]
    failures = [(r["kind"], e) for r in res["rows"] for e in r["examples"]] + \
               [(r["kind"], f"store: {r['store_failure']}") for r in res["rows"] if r.get("store_failure")]
    if failures:
        lines += ["", "First failures:", ""] + [f"- {k}: `{e[:300]}`" for k, e in failures]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--malformed", type=int, default=10_000, help="malformed inputs per kind (at least)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-cli", action="store_true", help="skip the audit trace subprocess runs")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fuzz.json")
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks" / "fuzz.md")
    args = ap.parse_args()
    res = run(args.malformed, args.seed, cli=not args.no_cli)
    command = "python benchmarks/bench_fuzz.py" + (f" --malformed {args.malformed}" if args.malformed != 10_000 else "") \
        + (f" --seed {args.seed}" if args.seed else "") + (" --no-cli" if args.no_cli else "")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**res, "command": command}, indent=2) + "\n")
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(markdown(res, command))
    print(f"wrote {args.out} and {args.doc}")


if __name__ == "__main__":
    main()
