"""`audit trace`, `query`, `runs`, `show`, `export` on the examples (model-free replay)."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest

from auditor.cli import app
from auditor.cli.app import EXIT_OK, EXIT_SKIPPED, EXIT_TIMEOUT, EXIT_USAGE
from auditor.store import Store

SEND_EMAIL_SQL = (
    "SELECT trajectory_id, action_id, driver_tool, driver_label, share FROM action_drivers "
    "WHERE tool_name = 'send_email' AND driver_kind = 'tool_output' ORDER BY trajectory_id, share DESC"
)
EXAMPLES = ("injected_email.jsonl", "benign_budget_email.jsonl", "aider_session.jsonl")


def trace(runner, db, *args):
    return runner.invoke(app, ["trace", *map(str, args), "--db", str(db)])


def test_trace_then_query_answers_which_tool_outputs_drove_send_email(runner, db, examples_dir, fake_auditor):
    result = trace(runner, db, *[examples_dir / n for n in EXAMPLES])
    assert result.exit_code == EXIT_OK, result.output
    assert "injected-inbox-forward:a1" in result.stdout and "send_email" in result.stdout
    assert "stored 3 trajectories" in result.stdout
    (auditor,) = fake_auditor.instances
    from auditor.check import audit_settings, default_policy

    assert auditor.kw == {"model": None, "method": "flashtrace", "hops": 1, "dtype": "float32", "device": None,
                          "max_tokens": None, **audit_settings(default_policy())}  # causal deltas if the verdict reads them

    result = runner.invoke(app, ["query", SEND_EMAIL_SQL, "--db", str(db), "--format", "json"])
    assert result.exit_code == EXIT_OK, result.output
    rows = json.loads(result.stdout)
    top = {}
    for r in rows:
        top.setdefault(r["action_id"], r)
    assert top["injected-inbox-forward:a1"]["driver_tool"] == "read_inbox"
    assert top["benign-budget-email:a2"]["driver_tool"] == "read_file"


def test_rerunning_trace_resumes_and_stores_nothing_twice(runner, db, examples_dir, fake_auditor):
    files = [examples_dir / n for n in EXAMPLES]
    assert trace(runner, db, *files).exit_code == EXIT_OK
    with Store(db, read_only=True) as s:
        before = s.counts()
        (run,) = s.runs()
    result = trace(runner, db, *files)
    assert result.exit_code == EXIT_OK, result.output
    assert len(fake_auditor.instances) == 1  # nothing left to replay: no model was even loaded
    assert "from the store" in result.stdout
    with Store(db, read_only=True) as s:
        assert s.counts() == before and s.runs()[0]["run_id"] == run["run_id"]
    # other options: another run
    assert trace(runner, db, *files, "--hops", "2").exit_code == EXIT_OK
    with Store(db, read_only=True) as s:
        assert len(s.runs()) == 2


def test_an_interrupted_run_resumes_where_it_stopped(runner, db, examples_dir, fake_auditor, tmp_path):
    src = [(examples_dir / n).read_text().strip() for n in EXAMPLES[:2]]
    exploding = json.loads(src[1])
    exploding["metadata"]["explode"] = True
    f = tmp_path / "two.jsonl"
    f.write_text(src[0] + "\n" + json.dumps(exploding) + "\n")
    result = trace(runner, db, f)
    assert result.exit_code == EXIT_SKIPPED
    assert "benign-budget-email: audit failed: RuntimeError: replay failed" in result.stderr
    with Store(db, read_only=True) as s:
        (run,) = s.runs()
        assert run["trajectories"] == 1
    result = trace(runner, db, f, "--allow-skipped")
    assert result.exit_code == EXIT_OK
    assert fake_auditor.instances[-1].audited == ["benign-budget-email"]  # only the missing one is replayed


def test_malformed_lines_are_reported_and_valid_lines_stored(runner, db, examples_dir, tmp_path):
    lines = [(examples_dir / n).read_text().strip() for n in EXAMPLES]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], "{not json", lines[1], '{"id": "x", "messages": []}', lines[2]]) + "\n")
    result = trace(runner, db, bad, "--no-attribute")
    assert result.exit_code == EXIT_SKIPPED, result.output
    assert f"{bad}:2: invalid JSON" in result.stderr
    assert f"{bad}:4 field messages" in result.stderr
    assert "stored 3 trajectories" in result.stdout
    with Store(db, read_only=True) as s:
        assert s.counts()["trajectories"] == 3
    ok = trace(runner, db, bad, "--no-attribute", "--allow-skipped")
    assert ok.exit_code == EXIT_OK


def test_trace_json_summary(runner, db, examples_dir, fake_auditor):
    result = trace(runner, db, examples_dir / "injected_email.jsonl", "--json", "--top", "2")
    assert result.exit_code == EXIT_OK, result.output
    data = json.loads(result.stdout)
    assert data["trajectories"] == 1 and data["skipped"] == 0 and data["run_id"].startswith("run-")
    (audit,) = data["audits"]
    send = next(a for a in audit["actions"] if a["tool_name"] == "send_email")
    assert len(send["drivers"]) == 2 and send["drivers"][0]["rank"] == 1 and send["support"] < 0.5


def test_trace_reports_a_replay_that_cannot_start(runner, db, examples_dir, monkeypatch):
    def broken(**kw):
        raise ValueError("unknown method 'nope'; valid: flashtrace, ...")

    monkeypatch.setattr("auditor.audit.runs.make_auditor", broken)
    result = trace(runner, db, examples_dir / "injected_email.jsonl", "--method", "nope")
    assert result.exit_code == EXIT_USAGE
    assert "unknown method" in result.stderr
    missing = trace(runner, db, examples_dir / "nope.jsonl")
    assert missing.exit_code == EXIT_USAGE


@pytest.fixture
def filled(runner, db, examples_dir, fake_auditor, tmp_path):
    policy = tmp_path / "support.toml"
    policy.write_text('decide = "support"\n')  # the synthetic shares decide exactly: the injected send fails
    assert trace(runner, db, *[examples_dir / n for n in EXAMPLES], "--policy", policy).exit_code == EXIT_OK
    return db


def test_query_refuses_writes(runner, filled):
    for sql, named in [("DROP TABLE runs", "DROP TABLE"), ("DELETE FROM attributions", "DELETE FROM"),
                       ("SELECT 1; DROP TABLE runs", "one statement"), ("PRAGMA database_list", "PRAGMA"),
                       ("ATTACH 'x.duckdb' AS x", "ATTACH"), ("UPDATE settings SET value = '0'", "UPDATE"),
                       ("IMPORT DATABASE 'elsewhere'", "IMPORT DATABASE"), ("INSTALL httpfs", "INSTALL"),
                       ("WITH gone AS (DELETE FROM settings RETURNING *) SELECT * FROM gone", "DELETE inside a query")]:
        result = runner.invoke(app, ["query", sql, "--db", str(filled)])
        assert result.exit_code == EXIT_USAGE, sql
        assert "refused" in result.stderr and named in " ".join(result.stderr.split()), (sql, result.stderr)
    with Store(filled, read_only=True) as s:
        assert s.counts()["runs"] == 1 and s.counts()["attributions"] > 0


def test_query_runs_pivot_and_stops_at_its_time_limit(runner, filled):
    pivot = runner.invoke(app, ["query", "PIVOT (SELECT tool_name, actions FROM tool_influence) ON tool_name "
                                         "USING sum(actions)", "--db", str(filled), "-f", "json"])
    assert pivot.exit_code == EXIT_OK, pivot.stderr
    assert json.loads(pivot.stdout)[0]["read_inbox"] == 2
    slow = runner.invoke(app, ["query", "SELECT count(*) FROM range(1000000000000)", "--db", str(filled),
                               "--timeout", "0.5"])
    assert slow.exit_code == EXIT_TIMEOUT and "timed out" in slow.stderr and "0.5 s" in slow.stderr


def test_query_formats_and_errors(runner, filled, tmp_path):
    result = runner.invoke(app, ["query", "SELECT tool_name, actions FROM tool_influence ORDER BY tool_name",
                                 "--db", str(filled), "-f", "csv"])
    assert result.exit_code == EXIT_OK
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["tool_name", "actions"] and ["read_inbox", "2"] in rows
    table = runner.invoke(app, ["query", "SELECT action_id, support FROM unsupported_actions", "--db", str(filled)])
    assert table.exit_code == EXIT_OK and "injected-inbox-forward:a1" in table.stdout
    bad = runner.invoke(app, ["query", "SELECT * FROM nowhere", "--db", str(filled)])
    assert bad.exit_code == EXIT_USAGE and "nowhere" in bad.stderr
    files = runner.invoke(app, ["query", "SELECT * FROM read_csv('/etc/hostname')", "--db", str(filled)])
    assert files.exit_code == EXIT_USAGE
    missing = runner.invoke(app, ["query", "SELECT 1", "--db", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == EXIT_USAGE and "no auditor database" in missing.stderr


def test_default_db_comes_from_the_environment(runner, tmp_path, examples_dir, fake_auditor, monkeypatch):
    monkeypatch.setenv("AUDITOR_DB", str(tmp_path / "env.duckdb"))
    assert runner.invoke(app, ["trace", str(examples_dir / "injected_email.jsonl")]).exit_code == EXIT_OK
    assert (tmp_path / "env.duckdb").exists()
    monkeypatch.delenv("AUDITOR_DB")
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["trace", str(examples_dir / "injected_email.jsonl"), "--no-attribute"]).exit_code == 0
    assert (tmp_path / "auditor.duckdb").exists()


def test_runs(runner, filled):
    result = runner.invoke(app, ["runs", "--db", str(filled), "-f", "json"])
    assert result.exit_code == EXIT_OK
    (run,) = json.loads(result.stdout)
    assert run["model"] == "fake" and run["trajectories"] == 3 and run["actions"] == 9 and run["unsupported"] >= 1
    assert runner.invoke(app, ["runs", "--db", str(filled)]).exit_code == EXIT_OK


def test_show(runner, filled):
    result = runner.invoke(app, ["show", "injected-inbox-forward:a1", "--db", str(filled)])
    assert result.exit_code == EXIT_OK, result.output
    out = result.stdout
    assert "send_email" in out and "drivers" in out and "archive@exfil.example" in out and "hops" in out
    as_json = runner.invoke(app, ["show", "injected-inbox-forward:a1", "--db", str(filled), "--json"])
    with Store(filled, read_only=True) as s:
        from auditor.report.export import action_export

        assert json.loads(as_json.stdout) == json.loads(json.dumps(action_export(s, "injected-inbox-forward:a1")))
    missing = runner.invoke(app, ["show", "nope", "--db", str(filled)])
    assert missing.exit_code == EXIT_USAGE and "no action" in missing.stderr


def test_show_prints_each_arguments_support_and_top_driver(runner, db, examples_dir, monkeypatch):
    from auditor.collectors.loading import load_path
    from auditor.report.export import action_export
    from auditor.testing.audits import synthetic_audit

    (traj,) = load_path(examples_dir / "injected_email.jsonl").trajectories
    audit = synthetic_audit(traj, arguments=True)
    with Store(db) as s:
        s.record_audit(audit)
    send = "injected-inbox-forward:a1"
    from auditor.cli.app import console

    # one line per row: a width for this test (the console read $COLUMNS once, when it was imported;
    # pytest-xdist's workers start with COLUMNS=80)
    monkeypatch.setattr(console, "_width", 160)
    result = runner.invoke(app, ["show", send, "--db", str(db)])
    assert result.exit_code == EXIT_OK, result.output
    out = result.stdout
    assert out.index("drivers") < out.index("arguments") < out.index("hops")
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in out.splitlines() if line.startswith("│ ") and line.count("│") == 8}
    data = json.loads(runner.invoke(app, ["show", send, "--db", str(db), "--json"]).stdout)
    with Store(db, read_only=True) as s:
        assert data == json.loads(json.dumps(action_export(s, send)))  # --json carries the arguments too
    args = {g["name"]: g for g in data["arguments"]}
    assert list(args) == ["to", "subject", "body"]
    value, support, decisive, d_request, d_driver, top = rows["to"]
    assert d_request == d_driver == "–"  # the synthetic audit measured no causal deltas
    assert value == "archive@exfil.example" and support == f"{args['to']['support']:.2f}" and decisive == "◆"
    assert top == f"{args['to']['drivers'][0]['share']:.1%} read_inbox output tool_output"
    assert rows["subject"][2] == "" and rows["body"][0].endswith("…")  # not decisive; long values cut
    assert "decisive" in out
    final = runner.invoke(app, ["show", "injected-inbox-forward:a2", "--db", str(db)])
    assert final.exit_code == EXIT_OK and "arguments" not in final.stdout


def test_show_highlights_the_strongest_tokens():
    from rich.console import Console

    from auditor.cli.show_cmd import segment_text

    seg = {"text": "a b c", "max_score": 3.0, "strongest": [1],
           "tokens": [{"i": 0, "text": "a ", "score": 0.1}, {"i": 1, "text": "b ", "score": 3.0},
                      {"i": 2, "text": "c", "score": 0.2}]}
    text = segment_text(seg)
    assert text.plain == "a b c"
    assert [(s.start, s.end) for s in text.spans] == [(2, 4)]
    long = {**seg, "tokens": [{"i": i, "text": f"t{i} ", "score": float(i == 500)} for i in range(1000)],
            "strongest": [500], "max_score": 1.0}
    plain = segment_text(long, window=10).plain
    assert plain.startswith("… ") and "t500" in plain and plain.endswith(" …")
    Console(file=io.StringIO()).print(text)


def test_export(runner, filled, tmp_path):
    out = tmp_path / "parquet"
    result = runner.invoke(app, ["export", str(out), "--db", str(filled)])
    assert result.exit_code == EXIT_OK, result.output
    assert (out / "attributions.parquet").exists() and (out / "action_drivers.parquet").exists()
    assert pq.read_table(out / "runs.parquet").num_rows == 1
    one = runner.invoke(app, ["export", str(tmp_path / "one"), "--db", str(filled), "-t", "segments"])
    assert one.exit_code == EXIT_OK and [p.name for p in (tmp_path / "one").iterdir()] == ["segments.parquet"]
    bad = runner.invoke(app, ["export", str(tmp_path / "bad"), "--db", str(filled), "-t", "nope"])
    assert bad.exit_code == EXIT_USAGE


def test_span_dump_with_bad_lines_keeps_every_valid_span(runner, db):
    from pathlib import Path

    from auditor.collectors.loading import load_path

    dump = Path(__file__).resolve().parents[1] / "collectors" / "data" / "otlp_genai.jsonl"
    assert dump.exists(), "tests/collectors/data/make_data.py writes this dump"
    expected = load_path(dump)
    assert expected.spans and expected.skipped
    result = trace(runner, db, dump, "--no-attribute")
    assert result.exit_code == EXIT_SKIPPED, result.output
    for issue in expected.issues:
        assert f"{issue.file}:{issue.line}" in result.stderr
    with Store(db, read_only=True) as s:
        assert s.counts()["spans"] == len(expected.spans)
        traces = s.query("SELECT t.trace_id, t.span_count, j.trajectory_id FROM traces t "
                         "JOIN trajectories j ON j.trace_id = t.trace_id")[1]
        assert traces and traces[0][1] >= 1
    again = runner.invoke(app, ["trace", str(dump), "--no-attribute", "--db", str(db), "--json"])
    assert json.loads(again.stdout)["spans_added"] == 0  # the same spans twice are stored once


def test_query_help_names_every_table_and_view():
    from auditor.cli.query_cmd import query_command

    with Store(":memory:") as s:
        names = s.relations()
    doc = query_command.__doc__
    missing = [n for n in names if n not in doc]
    assert not missing, f"audit query --help does not mention {missing}"


def test_trace_stores_the_checks_verdicts_and_a_resumed_run_is_judged_again(runner, db, examples_dir, fake_auditor,
                                                                             tmp_path):
    injected = examples_dir / "injected_email.jsonl"
    result = runner.invoke(app, ["trace", str(injected), "--db", str(db), "--json"])
    assert result.exit_code == EXIT_OK, result.output
    (audit,) = json.loads(result.stdout)["audits"]
    printed = {a["action_id"]: a for a in audit["actions"]}
    with Store(db, read_only=True) as s:
        rows = s.query("SELECT action_id, status, support, argument, policy_source FROM action_verdicts")[1]
    assert {r[0] for r in rows} == set(printed) and {r[4] for r in rows} == {"default"}
    for action_id, status, support, argument, _ in rows:
        a = printed[action_id]
        assert (status, argument) == (a["status"], a["argument"])
        if status != "ignored":
            assert support == pytest.approx(a["support"], abs=5e-5)  # --json rounds to 4 digits
    # the same run under another policy: nothing replayed, the verdicts judged again and replaced
    strict = tmp_path / "strict.toml"
    strict.write_text("[verdict.causal]\nthreshold = 0.0\n[verdict.attribution]\nthreshold = 0.0\n")  # flags all
    n = len(fake_auditor.instances)
    result = runner.invoke(app, ["trace", str(injected), "--db", str(db), "--json", "--policy", str(strict)])
    assert result.exit_code == EXIT_OK, result.output
    assert json.loads(result.stdout)["audits"][0]["resumed"] and len(fake_auditor.instances) == n
    with Store(db, read_only=True) as s:
        assert {r[0] for r in s.query("SELECT DISTINCT policy_source FROM action_verdicts")[1]} == {str(strict)}
        assert s.query("SELECT count(*) FROM unsupported_actions")[1][0][0] >= 1
