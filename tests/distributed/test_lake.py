"""The results lake without Ray: batches committed by a worker in this process (the same class the
Ray actors wrap), read back in place (`query_lake`) and ingested (`ingest_lake`). What these pin:
later commits win as they would in the store, only committed shards count, inputs and results
may live on any pyarrow filesystem, and nothing here imports Ray."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from auditor.audit.runs import run_id_for
from auditor.check import default_policy, policy_from_dict
from auditor.distributed import manifest as mf
from auditor.distributed.ingest import ingest_lake
from auditor.distributed import locations
from auditor.distributed.lake import open_lake, query_lake
from auditor.distributed.locations import expand_inputs, load_inputs, open_location
from auditor.distributed.run import DEFAULT_SETTINGS, _committer
from auditor.distributed.worker import BatchTask, ReplayWorker
from auditor.store import Store
from auditor.testing.audits import synthetic_trajectory
from auditor.trajectory import trajectory_sha256

ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC = "helpers.distributed:synthetic_auditor"


def commit_all(root, trajs, policy, batch_size=2, attempt=1):
    """What `audit_on_ray` does around the actors: one worker here, every batch committed."""
    settings = dict(DEFAULT_SETTINGS)
    run_id = run_id_for(trajs, settings)
    summary = mf.RunSummary(run_id=run_id, settings_key=mf.settings_key(settings, policy), settings=settings,
                            started_at=mf.now())
    commit = _committer(root, summary, retries=0, on_event=lambda e: None, total=len(trajs))
    worker = ReplayWorker(SYNTHETIC, settings, policy, "w0")
    for k in range(0, len(trajs), batch_size):
        chunk = trajs[k:k + batch_size]
        task = BatchTask(run_id, mf.batch_id(run_id, summary.settings_key, map(trajectory_sha256, chunk)),
                         [t.to_jsonl_line() for t in chunk], attempt)
        commit(task, worker.audit_batch(task))
    return summary


@pytest.fixture
def trajs():
    return [synthetic_trajectory(k, actions=2, words=12) for k in range(4)]


def test_the_lake_keeps_what_the_store_keeps_when_batches_overlap(tmp_path, trajs):
    lake = tmp_path / "lake"
    root = open_location(lake)
    strict = policy_from_dict({"threshold": 0.99}, source="strict.toml")
    first = commit_all(root, trajs, default_policy())
    second = commit_all(root, trajs[:3], strict, batch_size=3)  # the same audits judged again, later
    assert first.run_id != second.run_id  # three trajectories are another run ...
    third = commit_all(root, trajs, strict, batch_size=4)  # ... four are the first run again
    assert third.run_id == first.run_id
    db = tmp_path / "db.duckdb"
    with Store(db) as store:
        report = ingest_lake(lake, store)
        assert (report.batches, report.ingested, report.skipped) == (4, 4, 0)
        for sql in ("SELECT run_id, trajectory_id, action_id, status, threshold, policy_source FROM action_verdicts",
                    "SELECT run_id, trajectory_id, action_id, segment_id, rank, share FROM attributions",
                    "SELECT run_id, created_at, model, recorded_at FROM runs",
                    "SELECT trajectory_id, content_sha256, ingested_at FROM trajectories",
                    "SELECT trajectory_id, action_id, summary FROM actions",
                    "SELECT * FROM unsupported_actions"):
            mine = sorted(query_lake(lake, sql)[1], key=repr)
            theirs = sorted(store.query(sql)[1], key=repr)
            assert mine == theirs, sql
        # every audit of the first run was judged last under the strict policy; one row per key
        _, rows = store.query("SELECT DISTINCT run_id, policy_source FROM action_verdicts ORDER BY ALL")
        assert rows == sorted([(first.run_id, "strict.toml"), (second.run_id, "strict.toml")])
        assert store.counts()["audits"] == 4 + 3
        assert ingest_lake(lake, store).skipped == 4  # nothing twice


def test_only_committed_shards_count(tmp_path, trajs):
    lake = tmp_path / "lake"
    root = open_location(lake)
    commit_all(root, trajs[:2], default_policy())
    # a batch whose driver died after writing a shard, before its record: no reader sees it
    import pyarrow.parquet as pq

    stray = next((lake / "audits").iterdir())
    pq.write_table(pq.read_table(stray), lake / "audits" / "b-orphan.parquet")
    assert query_lake(lake, "SELECT count(*) FROM audits")[1] == [(2,)]
    with Store(tmp_path / "db.duckdb") as store:
        ingest_lake(lake, store)
        assert store.counts()["audits"] == 2


def test_the_lake_reads_its_files_and_nothing_else(tmp_path, trajs):
    lake = tmp_path / "lake"
    commit_all(open_location(lake), trajs[:1], default_policy())
    con = open_lake(lake)
    with pytest.raises(Exception, match="(?i)permission|disabled"):
        con.execute(f"SELECT * FROM read_text('{ROOT / 'README.md'}')").fetchall()
    from auditor.store import QueryRefused

    with pytest.raises(QueryRefused):
        query_lake(lake, "DROP VIEW action_drivers")
    with pytest.raises(FileNotFoundError, match="no results lake"):
        open_lake(tmp_path / "nothing")


def test_inputs_are_files_globs_directories_or_uris(tmp_path, trajs):
    (tmp_path / "runs" / "day1").mkdir(parents=True)
    (tmp_path / "runs" / "day1" / "a.jsonl").write_text(trajs[0].to_jsonl_line() + "\n", encoding="utf-8")
    (tmp_path / "runs" / "day1" / ".hidden.jsonl").write_text("not json\n", encoding="utf-8")
    (tmp_path / "runs" / "b.jsonl").write_text(trajs[1].to_jsonl_line() + "\n{broken\n", encoding="utf-8")
    files, missing = expand_inputs([str(tmp_path / "runs"), str(tmp_path / "runs" / "*.jsonl"),
                                    f"file://{tmp_path}/runs/day1/*.jsonl", str(tmp_path / "none*.jsonl"),
                                    str(tmp_path / "gone.jsonl")])
    assert [Path(f.path).relative_to(tmp_path).as_posix() for f in files] == ["runs/b.jsonl", "runs/day1/a.jsonl"]
    assert missing == [f"{tmp_path}/none*.jsonl: no file matches", f"{tmp_path}/gone.jsonl: file not found"]
    loaded = load_inputs([str(tmp_path / "runs")])
    assert [t.id for t in loaded.trajectories] == [trajs[1].id, trajs[0].id]
    assert [(i.file, i.line) for i in loaded.issues] == [(f"{tmp_path}/runs/b.jsonl", 2)]


def test_inputs_and_results_on_another_filesystem(tmp_path, trajs, monkeypatch):
    """A filesystem that is not local (pyarrow's in-memory mock, standing in for s3://): inputs are
    copied and read with their URI in every issue; shards and records are written through it and
    ingested back."""
    import pyarrow.fs as pafs

    mock = pafs._MockFileSystem()
    real = locations._from_uri
    monkeypatch.setattr(locations, "_from_uri",
                        lambda uri: (mock, uri.split("://", 1)[1]) if uri.startswith("mock://") else real(uri))
    mock.create_dir("bucket/runs", recursive=True)
    with mock.open_output_stream("bucket/runs/a.jsonl") as fh:
        fh.write((trajs[0].to_jsonl_line() + "\n" + "{oops\n").encode())
    with mock.open_output_stream("bucket/runs/b.jsonl") as fh:
        fh.write((trajs[1].to_jsonl_line() + "\n").encode())
    loaded = load_inputs(["mock://bucket/runs/*.jsonl"])
    assert [t.id for t in loaded.trajectories] == [trajs[0].id, trajs[1].id]
    assert [(i.file, i.line) for i in loaded.issues] == [("mock://bucket/runs/a.jsonl", 2)]
    root = open_location("mock://bucket/lake")
    assert not root.local
    commit_all(root, loaded.trajectories, default_policy())
    assert mock.get_file_info(pafs.FileSelector("bucket/lake/_manifest"))[0].path.endswith(".a1.json")
    with Store(tmp_path / "db.duckdb") as store:
        assert ingest_lake("mock://bucket/lake", store).audits == 2
        assert store.counts()["audits"] == 2


def test_the_single_machine_path_never_imports_ray(tmp_path):
    code = (
        "import sys\n"
        "import auditor, auditor.cli, auditor.distributed\n"
        "from auditor.distributed import lake, ingest, run, worker, manifest, locations\n"
        "from typer.testing import CliRunner\n"
        "import auditor.audit.runs as runs\n"
        "from auditor.testing.audits import synthetic_audit\n"
        "class A:\n"
        "    def __init__(self, **kw): self.settings = kw\n"
        "    def audit(self, t, *, run=None): return synthetic_audit(t, run)\n"
        "runs.make_auditor = A\n"
        f"r = CliRunner().invoke(auditor.cli.app, ['trace', {str(ROOT / 'examples' / 'injected_email.jsonl')!r}, "
        f"'--db', {str(tmp_path / 'x.duckdb')!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_trace_ray_without_ray_says_how_to_install(monkeypatch, tmp_path):
    import importlib.util

    from typer.testing import CliRunner

    from auditor.cli import app

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    res = CliRunner().invoke(app, ["trace", "--ray", str(ROOT / "examples"), "--results", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert "pip install 'auditor[ray]'" in res.output


def test_trace_without_ray_takes_files_only(tmp_path):
    from typer.testing import CliRunner

    from auditor.cli import app

    res = CliRunner().invoke(app, ["trace", str(ROOT / "examples"), "--db", str(tmp_path / "x.duckdb")])
    assert res.exit_code == 2 and "is a directory (use --ray)" in res.output
    res = CliRunner().invoke(app, ["trace", str(tmp_path / "gone.jsonl"), "--db", str(tmp_path / "x.duckdb")])
    assert res.exit_code == 2 and "file not found" in res.output
