"""Benchmark: spans per second through `audit collect`'s OTLP/HTTP and OTLP/gRPC receivers.

Two measurements per protocol, each with the receiver writing every span to a sink: a JSONL
file, the DuckDB store (``audit collect --db``: a request acknowledged once appended to the
write-ahead spool next to the database, the store following in batches, one transaction per
flush, the file held only while flushing), the store with ``--no-spool`` (a request acknowledged
once its spans are committed), or both a JSONL file and the store (acknowledged once in the
file, the store following behind). The sinks run side by side in one invocation, so their ratio
holds even when the machine is shared:

- ``raw``: client processes post pre-encoded ExportTraceServiceRequest bodies (protobuf and
  OTLP JSON, optionally gzip) over keep-alive connections: the receiver's own ceiling.
- ``sdk``: client processes run the OpenTelemetry SDK (BatchSpanProcessor + OTLPSpanExporter,
  protobuf): what instrumented agents actually send, SDK cost included.

The gRPC rows (`OTLPGrpcReceiver`, ``audit collect --grpc``) send the same pre-encoded requests
over one channel per client (raw) or use the SDK's gRPC exporter (sdk); their clients are
spawned, not forked, because gRPC does not survive fork.

After each run the JSONL file and/or the database are read back and every span must be there
exactly once.
Spans look like agent spans: GenAI attributes plus ~1 KB of message content.

    python benchmarks/bench_receiver.py            # writes benchmarks/results/receiver.json
                                                   # and docs/benchmarks/receiver.md
    python benchmarks/bench_receiver.py --quick    # smaller, for a smoke run
    python benchmarks/bench_receiver.py --sinks-only   # only the JSONL vs DuckDB rows
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import multiprocessing as mp
import os
import platform
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from auditor.collectors.readers import read_otlp_json
from auditor.collectors.receiver import OTLPReceiver, SpanWriter
from auditor.collectors.spool import spool_files
# auditor.collectors.grpc_receiver is imported in _run: the HTTP rows fork their clients first
from auditor.collectors.otlp_json import to_otlp_json
from auditor.collectors.otlp_proto import to_otlp_proto
from auditor.collectors.spans import SpanRecord

ROOT = Path(__file__).resolve().parent.parent

CONTENT = ("You are a careful coding agent. " * 8)[:256]


def _attrs(i: int) -> dict:
    return {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "vllm", "gen_ai.request.model": "smollm2",
        "gen_ai.request.temperature": 0.0, "gen_ai.usage.input_tokens": 900 + i % 50,
        "gen_ai.usage.output_tokens": 40, "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.input.messages": json.dumps([{"role": "system", "parts": [{"type": "text", "content": CONTENT}]},
                                             {"role": "user", "parts": [{"type": "text", "content": CONTENT}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "finish_reason": "stop",
                                               "parts": [{"type": "text", "content": CONTENT}]}]),
    }


def _batch(client: int, req: int, size: int) -> list[SpanRecord]:
    trace = f"{client:08x}{req:08x}" + "0" * 16
    return [SpanRecord(trace_id=trace, span_id=f"{client:04x}{req:06x}{i:06x}", name="chat smollm2", kind="CLIENT",
                       start_time_unix_nano=1_767_225_600_000_000_000 + i, end_time_unix_nano=1_767_225_600_100_000_000 + i,
                       attributes=_attrs(i), resource={"service.name": f"agent-{client}"}, scope="bench")
            for i in range(size)]


def _raw_client(port: int, client: int, requests: int, size: int, body_format: str, use_gzip: bool,
                barrier: "mp.synchronize.Barrier", out: "mp.Queue") -> None:
    bodies = []
    for r in range(requests):
        spans = _batch(client, r, size)
        if body_format == "protobuf":
            body, ctype = to_otlp_proto(spans).SerializeToString(), "application/x-protobuf"
        else:
            body, ctype = json.dumps(to_otlp_json(spans)).encode(), "application/json"
        bodies.append(gzip.compress(body, 1) if use_gzip else body)
    headers = {"Content-Type": ctype, **({"Content-Encoding": "gzip"} if use_gzip else {})}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    barrier.wait()
    bad = 0
    nbytes = 0
    for body in bodies:
        conn.request("POST", "/v1/traces", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        bad += resp.status != 200
        nbytes += len(body)
    conn.close()
    out.put((bad, nbytes))


def _grpc_raw_client(port: int, client: int, requests: int, size: int, use_gzip: bool,
                     barrier: "mp.synchronize.Barrier", out: "mp.Queue") -> None:
    import grpc

    bodies = [to_otlp_proto(_batch(client, r, size)).SerializeToString() for r in range(requests)]
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    # pre-encoded bytes, as in the HTTP rows: no serializer on the client side
    export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
    compression = grpc.Compression.Gzip if use_gzip else grpc.Compression.NoCompression
    grpc.channel_ready_future(channel).result(timeout=60)
    barrier.wait()
    bad = 0
    nbytes = 0
    for body in bodies:
        try:
            export(body, timeout=60, compression=compression)
        except grpc.RpcError:
            bad += 1
        nbytes += len(body)  # uncompressed: gRPC compresses inside the call
    channel.close()
    out.put((bad, nbytes))


def _sdk_client(port: int, client: int, n: int, barrier: "mp.synchronize.Barrier", out: "mp.Queue",
                protocol: str = "http") -> None:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        exporter = GrpcExporter(endpoint=f"127.0.0.1:{port}", insecure=True)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces")
    provider = TracerProvider(resource=Resource.create({"service.name": f"agent-{client}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=n + 1, max_export_batch_size=512,
                                                   schedule_delay_millis=100))
    tracer = provider.get_tracer("bench")
    attrs = _attrs(0)
    barrier.wait()
    for i in range(n):
        with tracer.start_as_current_span("chat smollm2", attributes=attrs):
            pass
    provider.shutdown()
    out.put((0, 0))


def _store_sink(db: Path):
    """What `audit collect --db` flushes through (the database created first)."""
    from auditor.store import Store
    from auditor.store.store import append_spans

    Store(db).close()
    return lambda spans: append_spans(db, spans)


SINK_NAMES = {"both": "JSONL + DuckDB", "duckdb": "duckdb (spool)", "duckdb-no-spool": "duckdb --no-spool"}


def _run(kind: str, clients: int, per_client: int, size: int = 100, body_format: str = "protobuf",
         use_gzip: bool = False, protocol: str = "http", sink: str = "jsonl") -> dict:
    ctx = mp.get_context("spawn" if protocol == "grpc" else "fork")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spans.jsonl" if sink in ("jsonl", "both") else None
        db = Path(tmp) / "spans.duckdb" if sink in ("duckdb", "duckdb-no-spool", "both") else None
        store_sink = _store_sink(db) if db is not None else None
        # what audit collect builds: --db alone spools (--no-spool: acknowledged once stored)
        writer = SpanWriter(path, store_sink, spool=db if sink == "duckdb" else None)
        if protocol == "grpc":
            from auditor.collectors.grpc_receiver import OTLPGrpcReceiver

            rec = OTLPGrpcReceiver(port=0, writer=writer).start()
        else:
            rec = OTLPReceiver(port=0, writer=writer).start()
        barrier = ctx.Barrier(clients + 1)
        out = ctx.Queue()
        if kind == "raw" and protocol == "grpc":
            procs = [ctx.Process(target=_grpc_raw_client, args=(rec.port, c, per_client, size, use_gzip, barrier, out))
                     for c in range(clients)]
            total = clients * per_client * size
        elif kind == "raw":
            procs = [ctx.Process(target=_raw_client, args=(rec.port, c, per_client, size, body_format, use_gzip, barrier, out))
                     for c in range(clients)]
            total = clients * per_client * size
        else:
            procs = [ctx.Process(target=_sdk_client, args=(rec.port, c, per_client, barrier, out, protocol))
                     for c in range(clients)]
            total = clients * per_client
        for p in procs:
            p.start()
        barrier.wait(timeout=300)
        t0 = time.perf_counter()
        results = [out.get(timeout=600) for _ in procs]
        elapsed = time.perf_counter() - t0
        for p in procs:
            p.join(timeout=60)
        elapsed_acked = elapsed
        rec.stop()  # flushes what the store has not taken yet (with a JSONL file or spool, acks came before)
        elapsed_stored = time.perf_counter() - t0
        exactly_once, stored = True, None
        if db is not None and any(p.exists() for p in spool_files(db).spools):
            exactly_once = False  # a clean stop removes the spool
        if path is not None:
            spans, issues = read_otlp_json(path)
            counts = Counter((s.trace_id, s.span_id) for s in spans)
            exactly_once = len(counts) == total and set(counts.values()) == {1} and not issues
            stored = len(spans)
        if db is not None:
            import duckdb

            con = duckdb.connect(str(db), read_only=True)
            n, distinct = con.execute("SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM spans").fetchone()
            con.close()
            exactly_once = exactly_once and n == distinct == total
            stored = n if stored is None else min(stored, n)
        elapsed = elapsed_stored if sink in ("both", "duckdb") else elapsed_acked
        return {
            "protocol": "gRPC" if protocol == "grpc" else "HTTP", "sink": SINK_NAMES.get(sink, sink),
            "kind": kind, "body": body_format if kind == "raw" else "protobuf (SDK)",
            "gzip": use_gzip, "clients": clients, "spans": total,
            "spans_per_request": size if kind == "raw" else 512,
            "seconds": round(elapsed, 3), "spans_per_second": round(total / elapsed),
            "seconds_to_last_ack": round(elapsed_acked, 3),
            "failed_requests": sum(b for b, _ in results), "request_mb": round(sum(n for _, n in results) / 1e6, 2),
            "stored_exactly_once": exactly_once, "stored": stored,
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small run (smoke test)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--sinks-only", action="store_true", help="only the JSONL vs DuckDB rows (side by side)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "receiver.json")
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks" / "receiver.md")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()[0]
    per = 10 if args.quick else 50  # requests of 100 spans per client
    sdk_per = 1000 if args.quick else 5000
    sinks = []  # the same load into each sink, one after the other, interleaved twice against drift
    for _ in range(2):
        for sink in ("jsonl", "duckdb", "duckdb-no-spool", "both"):
            sinks.append(_run("raw", args.clients, per, body_format="protobuf", sink=sink))
            sinks.append(_run("sdk", args.clients, sdk_per, sink=sink))
    runs = sinks if args.sinks_only else [
        *sinks,
        _run("raw", args.clients, per, body_format="protobuf"),
        _run("raw", args.clients, per, body_format="protobuf", use_gzip=True),
        _run("raw", args.clients, per, body_format="json"),
        _run("sdk", args.clients, sdk_per),
        # gRPC last: its clients are spawned, and forking after gRPC has run in this process is unsafe
        _run("raw", args.clients, per, body_format="protobuf", protocol="grpc"),
        _run("raw", args.clients, per, body_format="protobuf", use_gzip=True, protocol="grpc"),
        _run("sdk", args.clients, sdk_per, protocol="grpc"),
    ]
    for r in runs:
        print(f"{r['protocol']:>4} {r['sink']:>14} {r['kind']:>4} {r['body']:>15} gzip={str(r['gzip']):5} {r['spans']:>7} spans "
              f"{r['seconds']:>7.2f} s  {r['spans_per_second']:>8} spans/s  exactly-once={r['stored_exactly_once']}")
    command = "python benchmarks/bench_receiver.py" + (" --quick" if args.quick else "") + \
              (" --sinks-only" if args.sinks_only else "") + (f" --clients {args.clients}" if args.clients != 4 else "")
    ratios = _sink_ratios(sinks)
    report = {
        "benchmark": "receiver",
        "command": command,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                    "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}},
        "receiver": "auditor.collectors.receiver.OTLPReceiver (stdlib ThreadingHTTPServer) and "
                    "auditor.collectors.grpc_receiver.OTLPGrpcReceiver (grpcio, 8 worker threads), loopback",
        "results": runs,
        "sink_ratios": ratios,
        "headline_spans_per_second": runs[0]["spans_per_second"],
        "all_exactly_once": all(r["stored_exactly_once"] for r in runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(_markdown(report))
    print(f"wrote {args.out} and {args.doc}")
    return 0 if report["all_exactly_once"] else 1


def _sink_ratios(runs: list[dict]) -> list[dict]:
    """Per load (raw, sdk) and sink: the median of its spans/s over the rounds, and the median of
    its ratio to the JSONL sink of the same round (each round runs the sinks back to back, so a
    ratio compares runs a few seconds apart, under the same load from the rest of the machine)."""
    out = []
    for kind in ("raw", "sdk"):
        rounds: list[dict[str, int]] = []
        for r in runs:
            if r["kind"] != kind:
                continue
            if not rounds or r["sink"] in rounds[-1]:
                rounds.append({})
            rounds[-1][r["sink"]] = r["spans_per_second"]
        for sink in dict.fromkeys(k for rnd in rounds for k in rnd):
            rates = [rnd[sink] for rnd in rounds if sink in rnd]
            ratios = [rnd[sink] / rnd["jsonl"] for rnd in rounds if sink in rnd and rnd.get("jsonl")]
            out.append({"kind": kind, "sink": sink, "spans_per_second": round(statistics.median(rates)),
                        "ratio_to_jsonl": round(statistics.median(ratios), 2) if ratios else None,
                        "rounds": len(rates)})
    return out


def _markdown(rep: dict) -> str:
    m = rep["machine"]
    load = m["load_average_1min"]
    loaded = ""
    # the load before the run is the rest of the machine's; the load after includes this run's own
    # client processes and receiver (above the CPU count even on a quiet machine)
    if load["before"] > m["cpus"]:
        loaded = ("\n**This run shared the machine with other work** (load average above the CPU count): the "
                  "absolute figures are depressed and vary from run to run; the side-by-side ratios are the "
                  "figures to compare.\n\n")
    ratio_rows = "\n".join(f"| {r['kind']} | {r['sink']} | {r['spans_per_second']:,} | {r['ratio_to_jsonl']} |"
                           for r in rep.get("sink_ratios", []))
    rows = "\n".join(
        f"| {r.get('protocol', 'HTTP')} | {r.get('sink', 'jsonl')} | {r['kind']} | {r['body']} | {'yes' if r['gzip'] else 'no'} | {r['clients']} | {r['spans']:,} | "
        f"{r['seconds']:.2f} | **{r['spans_per_second']:,}** | {'yes' if r['stored_exactly_once'] else 'NO'} |"
        for r in rep["results"])
    return f"""# OTLP receiver throughput (`audit collect`)

Spans per second received over OTLP/HTTP and OTLP/gRPC on loopback and stored (a JSONL
file, the DuckDB store, or both), with every span read back afterwards and checked to be stored
exactly once.

Reproduce:

```
{rep['command']}
```

(writes `benchmarks/results/receiver.json` and this page).

| protocol | sink | run | body | gzip | client processes | spans | seconds | spans/s | stored exactly once |
|---|---|---|---|---|---|---|---|---|---|
{rows}

Sinks side by side (HTTP; the same load into each sink back to back, two rounds, one
invocation; the ratio is the median of each round's ratio to its JSONL run, so it holds on a
shared machine where the absolute figures do not):

| run | sink | spans/s | ratio to JSONL |
|---|---|---|---|
{ratio_rows}

- **jsonl**: acknowledged once appended to the file. **duckdb (spool)** (`audit collect --db`
  alone): acknowledged once appended to the write-ahead spool `DB.spool.jsonl`, the store
  following in batches of 5,000 spans or 100 ms (one transaction each, the file opened only for
  the flush), the spool emptied as the store catches up and removed at the stop; its seconds
  run until the store has caught up (the receiver's stop drains it), not to the last
  acknowledgement (`seconds_to_last_ack` in the JSON). **duckdb --no-spool**: batched across
  requests (a batch starts as soon as the previous one is committed, plus a 10 ms gap in which
  other processes can open the file, and holds whatever arrived meanwhile), a request
  acknowledged only once its batch is committed: its seconds run until the last
  acknowledgement. **JSONL + DuckDB**: like the spool, with a JSONL file the user keeps; its
  seconds run until the store has caught up too.

- **raw**: client processes post pre-encoded `ExportTraceServiceRequest` bodies of 100 spans over
  keep-alive connections (gRPC: one channel per client); this is the receiver's own ceiling
  (parse, convert, write).
- **sdk**: client processes run the OpenTelemetry SDK (`BatchSpanProcessor` + `OTLPSpanExporter`,
  HTTP/protobuf or gRPC, batches of up to 512): what an instrumented agent sends, SDK cost included.
- Each span carries GenAI attributes and about 1 KB of message content, like a captured chat span.

Machine: {m['cpus']} CPUs ({m['processor']}), Python {m['python']}, {m['platform']}.
1-minute load average: {m['load_average_1min']['before']} before the run (above the CPU count would
mean other work shared the machine, depressing the figures), {m['load_average_1min']['after']} after
(which includes this run's own clients and receiver).
{loaded}The clients and the receiver share these CPUs, so the figures are a floor for the receiver
alone; it handles requests in threads, so one process uses about one core.

For scale: an agent step makes a handful of spans and vLLM one `llm_request` span per request,
so even the slowest row is far above what one agent or one vLLM server emits.
"""


if __name__ == "__main__":
    raise SystemExit(main())
