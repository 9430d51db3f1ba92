"""`audit collect` as a real process: listens, stores, flushes and exits 0 on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.collectors.readers import read_otlp_json

from test_receiver import post, records  # shared helpers
from auditor.collectors.otlp_json import to_otlp_json
from auditor.collectors.otlp_proto import to_otlp_proto


class _Rec:  # what post() needs
    def __init__(self, port: int):
        self.port = port


def test_help_has_an_example():
    result = CliRunner().invoke(app, ["collect", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Example: audit collect" in result.output and "--max-body-mb" in result.output
    assert "--grpc" in result.output and "--grpc-port" in result.output and "--no-http" in result.output
    assert "127.0.0.1:4317" in result.output and "OTEL_EXPORTER_OTLP_TRACES_INSECURE=true" in result.output


def test_collect_receives_and_flushes_on_sigterm(tmp_path):
    out = tmp_path / "run.jsonl"
    db = tmp_path / "audit.duckdb"
    env = {**os.environ, "AUDITOR_COLLECT_TOKEN": "tok"}
    proc = subprocess.Popen([sys.executable, "-c", "from auditor.cli import main; main()", "collect", "--port", "0", "--jsonl", str(out),
                             "--db", str(db), "--max-body-mb", "0.01"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        line = proc.stdout.readline()  # "listening on http://127.0.0.1:PORT/v1/traces -> ..."
        assert line.startswith("listening on http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() else "")
        port = int(line.split(":")[2].split("/")[0])
        rec = _Rec(port)
        body = json.dumps(to_otlp_json(records(4))).encode()
        assert post(rec, body)[0] == 401
        assert post(rec, body, {"Authorization": "Bearer tok"})[0] == 200
        big = json.dumps(to_otlp_json(records(200))).encode()
        assert post(rec, big, {"Authorization": "Bearer tok"})[0] == 413
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    tail = proc.stdout.read()
    assert rc == 0, proc.stderr.read()
    assert "stopped: 4 spans from 1 requests stored" in tail
    spans, issues = read_otlp_json(out)
    assert len(spans) == 4 and issues == []
    import auditor.store as store_mod

    with store_mod.Store(db, read_only=True) as store:
        assert store.connection.execute("SELECT count(*) FROM spans").fetchone()[0] == 4


def test_collect_reports_a_busy_port(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = CliRunner().invoke(app, ["collect", "--port", str(port), "--jsonl", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2
    assert "cannot listen" in result.output


def test_collect_grpc_and_http_share_the_file_and_flush_on_sigterm(tmp_path):
    """--grpc next to HTTP: the real SDK gRPC exporter and a raw HTTP post, one file, SIGTERM."""
    import grpc
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
    from opentelemetry.sdk.trace.export import SpanExportResult

    from test_grpc_receiver import finished_spans

    out = tmp_path / "run.jsonl"
    db = tmp_path / "audit.duckdb"
    env = {**os.environ, "AUDITOR_COLLECT_TOKEN": "tok"}
    proc = subprocess.Popen([sys.executable, "-c", "from auditor.cli import main; main()", "collect", "--port", "0",
                             "--grpc", "--grpc-port", "0", "--jsonl", str(out), "--db", str(db), "--max-body-mb", "0.01"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        http_line = proc.stdout.readline()
        grpc_line = proc.stdout.readline()  # "listening on 127.0.0.1:PORT (OTLP/gRPC, plaintext) -> ..."
        assert http_line.startswith("listening on http://127.0.0.1:"), (http_line, proc.stderr.read() if proc.poll() else "")
        assert grpc_line.startswith("listening on 127.0.0.1:") and "OTLP/gRPC" in grpc_line, grpc_line
        http_port = int(http_line.split(":")[2].split("/")[0])
        address = grpc_line.split()[2]
        body = json.dumps(to_otlp_json(records(4))).encode()
        assert post(_Rec(http_port), body, {"Authorization": "Bearer tok"})[0] == 200
        spans = finished_spans(3)
        assert OTLPSpanExporter(endpoint=address, insecure=True, timeout=5).export(spans) == SpanExportResult.FAILURE
        assert OTLPSpanExporter(endpoint=address, insecure=True, timeout=5,
                                headers={"authorization": "Bearer tok"}).export(spans) == SpanExportResult.SUCCESS
        with grpc.insecure_channel(address) as channel:  # over --max-body-mb
            big = to_otlp_proto(records(1, start=50))
            big.resource_spans[0].scope_spans[0].spans[0].name = "x" * 20_000
            with pytest.raises(grpc.RpcError) as exc:
                trace_service_pb2_grpc.TraceServiceStub(channel).Export(big, metadata=[("authorization", "Bearer tok")], timeout=5)
            assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    tail = proc.stdout.read()
    assert rc == 0, proc.stderr.read()
    assert "stopped: 7 spans from 2 requests stored (OTLP/HTTP: 4, OTLP/gRPC: 3)" in tail
    stored, issues = read_otlp_json(out)
    assert len(stored) == 7 and issues == []
    import auditor.store as store_mod

    with store_mod.Store(db, read_only=True) as store:
        assert store.connection.execute("SELECT count(*) FROM spans").fetchone()[0] == 7


def test_collect_needs_a_protocol(tmp_path):
    result = CliRunner().invoke(app, ["collect", "--no-http", "--jsonl", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2 and "--no-http needs --grpc" in result.output


def test_collect_reports_a_busy_grpc_port(tmp_path):
    from auditor.collectors.grpc_receiver import OTLPGrpcReceiver

    with OTLPGrpcReceiver(port=0) as busy:
        result = CliRunner().invoke(app, ["collect", "--port", "0", "--grpc", "--grpc-port", str(busy.port),
                                          "--jsonl", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2
    assert "cannot listen" in result.output and str(busy.port) in result.output
