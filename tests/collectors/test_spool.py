"""The write-ahead spool of `audit collect --db`: a real DuckDB file behind a real receiver over
HTTP (the OpenTelemetry SDK exporter and raw OTLP JSON bodies). Acknowledged spans end up in the
database; what a previous run left in the spool is stored on the next start; a failing store
keeps its spans in the spool; under load the spool is rotated and never drops an unstored span."""

from __future__ import annotations

import json
import threading

import duckdb
import pytest

from auditor.collectors.otlp_json import to_otlp_json, to_otlp_json_line
from auditor.collectors.receiver import OTLPReceiver, SpanWriter
from auditor.collectors.spool import SpoolBusy, spool_files
from auditor.store import Store
from auditor.store.store import append_spans

from test_receiver import post, records, sdk_run


def _db(tmp_path):
    db = tmp_path / "audit.duckdb"
    Store(db).close()  # created and migrated, as `audit collect --db` does
    return db


def _stored(db) -> list[tuple[str, str]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT trace_id, span_id FROM spans ORDER BY ALL").fetchall()
    finally:
        con.close()


def _ids(spans) -> set[tuple[str, str]]:
    return {(s.trace_id, s.span_id) for s in spans}


def test_acknowledged_spans_are_in_the_database_and_the_spool_is_gone(tmp_path):
    db = _db(tmp_path)
    writer = SpanWriter(sink=lambda s: append_spans(db, s), spool=db, flush_ms=20)
    with OTLPReceiver(port=0, writer=writer) as rec:
        sdk_run(rec.url, 30, "spooled")  # the real SDK exporter, protobuf
        body = json.dumps(to_otlp_json(records(7, trace="cd" * 16))).encode()
        assert post(rec, body)[0] == 200
        assert spool_files(db).active.exists()
    stored = _stored(db)
    assert len(stored) == len(set(stored)) == 37
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.duckdb"]


def test_a_spool_left_behind_is_stored_on_the_next_start(tmp_path):
    db = _db(tmp_path)
    files = spool_files(db)
    already = records(3, trace="11" * 16)
    append_spans(db, already)  # stored before the "crash": the spool holds them too
    lost = records(5, trace="22" * 16)
    rotated = records(4, trace="33" * 16)
    files.active.write_text(to_otlp_json_line(already) + "\n" + to_otlp_json_line(lost) + "\n"
                            + '{"resourceSpans": [{"scopeSp')  # torn by the kill: never acknowledged
    files.rotated.write_text(to_otlp_json_line(rotated) + "\n")
    warnings: list[str] = []
    writer = SpanWriter(sink=lambda s: append_spans(db, s), spool=db, warn=warnings.append)
    with OTLPReceiver(port=0, writer=writer):
        replayed = writer.replayed
        assert replayed is not None and replayed.files == [files.rotated, files.active]
        assert (replayed.spans, replayed.stored) == (12, 9)
        assert [i.line for i in replayed.issues] == [3] and "invalid JSON" in replayed.issues[0].message
        assert not files.rotated.exists() and files.active.stat().st_size == 0
    assert set(_stored(db)) == _ids(already + lost + rotated)
    assert not files.active.exists() and warnings == []


def test_a_failing_store_keeps_the_spans_in_the_spool_for_the_next_start(tmp_path):
    db = _db(tmp_path)
    files = spool_files(db)

    def broken(spans):
        raise RuntimeError("disk full")

    warnings: list[str] = []
    sent = records(6, trace="44" * 16)
    writer = SpanWriter(sink=broken, spool=db, flush_ms=10, warn=warnings.append)
    with OTLPReceiver(port=0, writer=writer) as rec:
        assert post(rec, json.dumps(to_otlp_json(sent[:3])).encode())[0] == 200  # durable in the spool
        assert writer.flush(30)
        assert post(rec, json.dumps(to_otlp_json(sent[3:])).encode())[0] == 200
    assert writer.sink_failed_spans == 6
    assert any("disk full" in w and str(files.active) in w for w in warnings)
    assert any("kept in" in w for w in warnings)
    assert files.active.exists() and _stored(db) == []

    writer = SpanWriter(sink=lambda s: append_spans(db, s), spool=db)
    with OTLPReceiver(port=0, writer=writer):
        assert writer.replayed is not None and writer.replayed.stored == 6
    assert set(_stored(db)) == _ids(sent)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.duckdb"]


def test_a_store_failing_on_start_leaves_the_spool_as_it_was(tmp_path):
    db = _db(tmp_path)
    files = spool_files(db)
    line = to_otlp_json_line(records(2)) + "\n"
    files.active.write_text(line)

    def broken(spans):
        raise RuntimeError("locked")

    with pytest.raises(RuntimeError, match="locked"):
        OTLPReceiver(port=0, writer=SpanWriter(sink=broken, spool=db)).start()
    assert files.active.read_text() == line and not files.lock.exists()


def test_two_receivers_cannot_share_a_spool(tmp_path):
    db = _db(tmp_path)
    first = SpanWriter(sink=lambda s: append_spans(db, s), spool=db)
    first.acquire()
    try:
        with pytest.raises(SpoolBusy):
            SpanWriter(sink=lambda s: append_spans(db, s), spool=db).acquire()
    finally:
        first.release()
    second = SpanWriter(sink=lambda s: append_spans(db, s), spool=db)
    second.acquire()  # free again
    second.release()


def test_rotation_under_load_never_drops_an_unstored_span(tmp_path):
    """The spool is rotated (tiny rotate_bytes) while four threads keep writing; at any moment
    every acknowledged span is in the spool files or already stored."""
    db = _db(tmp_path)
    files = spool_files(db)
    stored: set[tuple[str, str]] = set()
    stored_lock = threading.Lock()

    def sink(spans):
        append_spans(db, spans)
        with stored_lock:
            stored.update(_ids(spans))

    acked: set[tuple[str, str]] = set()
    acked_lock = threading.Lock()
    writer = SpanWriter(sink=sink, spool=db, flush_ms=5, flush_spans=50, rotate_bytes=2000)
    writer.acquire()
    stop = threading.Event()

    def client(k: int) -> None:
        i = 0
        while not stop.is_set() and i < 150:
            spans = records(10, trace=f"{k:02x}{i:030x}")
            writer.write(spans)
            with acked_lock:
                acked.update(_ids(spans))
            i += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    checks = rotations = 0
    from auditor.collectors.readers import read_otlp_json

    while any(t.is_alive() for t in threads):
        with acked_lock:
            before = set(acked)
        seen = set()
        for path in (files.active, files.rotated):  # the active one first: a rename moves it to the other
            try:
                spans, _ = read_otlp_json(path)  # a line being appended may be torn: not yet acknowledged
            except FileNotFoundError:
                continue
            seen |= _ids(spans)
        rotations += files.rotated.exists()
        with stored_lock:
            seen |= stored
        assert before <= seen
        checks += 1
    for t in threads:
        t.join()
    writer.release()
    assert checks > 0 and rotations > 0
    assert set(_stored(db)) == acked and len(acked) == 4 * 150 * 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.duckdb"]
