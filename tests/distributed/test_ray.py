"""`audit trace --ray` on a real local Ray cluster (one per module, 2 CPUs): the same results as the
single-process `audit trace`, a rerun that does nothing, a worker killed mid-run, failures retried
then reported, and one query surface (the lake in place, or ingested into the store).

Workers are other processes: they build a tiny seeded random model (`auditor.testing.auditors`,
or the wrappers in `helpers.distributed`), so the attributions are real, just small.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

ray = pytest.importorskip("ray")

from auditor.cli import app  # noqa: E402
from auditor.distributed import RayOptions, audit_on_ray, query_lake  # noqa: E402
from auditor.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = "auditor.testing.auditors:tiny_auditor"
INJECTION = ROOT / "benchmarks" / "injection" / "data" / "email.jsonl"


@pytest.fixture(scope="module", autouse=True)
def ray_cluster(tmp_path_factory):
    """One local cluster for the module; workers see the worktree and tests/ (helpers.distributed)."""
    old = os.environ.get("PYTHONPATH")
    old_threads = os.environ.get("OMP_NUM_THREADS")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), str(ROOT / "tests"), old) if p)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from auditor.distributed.ray_runner import LOCAL_INIT

    ray.init(num_cpus=2, _temp_dir=str(tmp_path_factory.mktemp("ray")), **LOCAL_INIT)
    yield
    ray.shutdown()
    for key, value in (("PYTHONPATH", old), ("OMP_NUM_THREADS", old_threads)):
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[str]:
    """Six trajectories: three example files in a directory, three injection runs in one JSONL."""
    base = tmp_path_factory.mktemp("inputs")
    shutil.copytree(ROOT / "examples", base / "examples", ignore=shutil.ignore_patterns("*.py", "__pycache__", "agents", "runs",
                                                                                        "github-actions"))
    lines = INJECTION.read_text(encoding="utf-8").splitlines()[:3]
    (base / "injection.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [str(base / "examples"), str(base / "*.jsonl")]


def _same_rows(a, b) -> bool:
    """Equal rows, floats to 1e-12 relative: an aggregate's last bits depend on summation order
    (DuckDB's threads may add in another order; float64 rounding is ~1e-16 per addition)."""
    import math

    def same(x, y):
        if isinstance(x, float) or isinstance(y, float):
            return isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isclose(x, y, rel_tol=1e-12,
                                                                                                 abs_tol=1e-15)
        return x == y

    return len(a) == len(b) and all(r.keys() == q.keys() and all(same(r[k], q[k]) for k in r) for r, q in zip(a, b))


def _close(a, b) -> bool:
    """Floats agree to 1e-6 of their magnitude (at least 1): the replays differ only in the
    order torch sums in (its thread count per process)."""
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return a == b


def _rows(query, sql: str) -> list[tuple]:
    return sorted(query(sql)[1], key=lambda r: tuple(str(v) for v in r))


@pytest.fixture(scope="module")
def single(tmp_path_factory, inputs) -> dict:
    """The single-process `audit trace` of the same inputs (the one seam: `make_auditor`)."""
    import glob

    from auditor.testing.auditors import tiny_auditor

    db = tmp_path_factory.mktemp("single") / "single.duckdb"
    files = sorted(str(p) for p in Path(inputs[0]).iterdir()) + sorted(glob.glob(inputs[1]))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("auditor.audit.runs.make_auditor", tiny_auditor)
        res = CliRunner().invoke(app, ["trace", *files, "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    return {"db": db, "out": json.loads(res.stdout)}


@pytest.fixture(scope="module")
def lake(tmp_path_factory, inputs) -> dict:
    """`audit trace --ray` of the same inputs: two workers, two trajectories per batch."""
    results = tmp_path_factory.mktemp("lake") / "results"
    res = CliRunner().invoke(app, ["trace", "--ray", *inputs, "--results", str(results), "--workers", "2",
                                   "--batch-size", "2", "--auditor-factory", TINY, "--json"])
    assert res.exit_code == 0, res.output
    return {"results": results, "out": json.loads(res.stdout)}


def test_ray_results_equal_the_single_process_trace(single, lake):
    out = lake["out"]
    assert out["run_id"] == single["out"]["run_id"]  # same inputs, same settings: the same run
    assert (out["trajectories"], out["audited"], out["resumed"], out["failed"]) == (6, 6, 0, [])
    assert out["batches"] == 3
    with Store(single["db"], read_only=True) as store:
        for sql in (
            "SELECT run_id, trajectory_id, action_id, segment_id, kind, rank, hop, score, share FROM attributions",
            "SELECT run_id, trajectory_id, action_id, argument, segment_id, rank, score, share FROM argument_attributions",
            "SELECT run_id, trajectory_id, action_id, context_end, scores FROM token_scores",
            "SELECT run_id, trajectory_id, action_id, status, argument, support, action_support, threshold, rules "
            "FROM action_verdicts",
            "SELECT run_id, trajectory_id, segment_id, kind, label, token_start, token_end FROM segments",
            "SELECT trajectory_id, content_sha256, n_actions, document FROM trajectories",
            "SELECT run_id, model, method, hops, dtype FROM runs",
        ):
            mine = _rows(lambda q: query_lake(lake["results"], q), sql)
            theirs = _rows(store.query, sql)
            assert len(mine) == len(theirs) > 0, sql
            bad = [(m, t) for m, t in zip(mine, theirs) if not all(_close(x, y) for x, y in zip(m, t))]
            assert not bad, f"{sql}: {bad[:2]}"


def test_a_rerun_is_a_no_op(lake, inputs):
    results = lake["results"]
    before = {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file() and "_runs" not in p.parts}
    run = audit_on_ray(inputs, results, options=RayOptions(workers=2, batch_size=2), auditor_factory=TINY)
    assert (run.summary.audited, run.summary.resumed, run.summary.batches) == (0, 6, 0)
    assert run.summary.run_id == lake["out"]["run_id"]
    after = {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file() and "_runs" not in p.parts}
    assert after == before  # not a shard or record rewritten


def test_the_lake_and_the_ingested_store_answer_alike(lake, single, tmp_path):
    results = str(lake["results"])
    db = tmp_path / "ingested.duckdb"
    runner = CliRunner()
    first = runner.invoke(app, ["ingest", results, "--db", str(db), "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) | {"db": None} == {"db": None, "results": results, "batches": 3, "ingested": 3,
                                                         "skipped": 0, "audits": 6, "failed": []}
    again = json.loads(runner.invoke(app, ["ingest", results, "--db", str(db), "--json"]).stdout)
    assert (again["ingested"], again["skipped"]) == (0, 3)
    drivers = ("SELECT run_id, trajectory_id, action_id, tool_name, rank, driver_kind, driver_label, share "
               "FROM action_drivers WHERE rank <= 3 ORDER BY ALL")
    verdicts = ("SELECT run_id, action_id, status, support, argument, probability, verdict_model, evidence, "
                "policy_source FROM action_verdicts ORDER BY ALL")
    unsupported = "SELECT run_id, action_id, support, probability FROM unsupported_actions ORDER BY ALL"
    for sql in (drivers, verdicts, "SELECT * FROM tool_influence ORDER BY ALL", "SHOW TABLES", unsupported):
        lake_res = runner.invoke(app, ["query", "--lake", results, sql, "--format", "json"])
        store_res = runner.invoke(app, ["query", "--db", str(db), sql, "--format", "json"])
        assert lake_res.exit_code == store_res.exit_code == 0, lake_res.output + store_res.output
        if sql == "SHOW TABLES":  # the lake has every table and view of the store, and its manifest
            assert {r["name"] for r in json.loads(store_res.stdout)} <= {r["name"] for r in json.loads(lake_res.stdout)}
            continue
        assert _same_rows(json.loads(lake_res.stdout), json.loads(store_res.stdout)), sql
        # (the calibrated verdict on the tiny random model may fail no action: that view may be empty)
        assert json.loads(lake_res.stdout) or sql == unsupported, sql
    with Store(db, read_only=True) as store:
        counts = store.counts()
    # ingesting into the single-process store adds nothing: the same run, trajectories and rows
    with Store(single["db"]) as store:
        before = store.counts()
        from auditor.distributed import ingest_lake

        ingest_lake(results, store)
        after = store.counts()
    assert after.pop("lake_batches") == 3 and before.pop("lake_batches") == 0  # which batches it holds
    assert after == before
    assert counts.pop("lake_batches") == 3
    assert {k: v for k, v in counts.items() if k != "spans"} == {k: v for k, v in before.items() if k != "spans"}


def test_killing_a_worker_mid_run_still_completes(tmp_path, inputs):
    results = tmp_path / "results"
    killed: list[str] = []

    def on_event(event):
        if event.kind == "committed" and not killed and event.done < event.total:
            name = event.workers[0]  # both workers hold batches: kill one while it audits
            ray.kill(ray.get_actor(name))
            killed.append(name)

    run = audit_on_ray(inputs, results, options=RayOptions(workers=2, batch_size=1),
                       auditor_factory="helpers.distributed:slow_tiny_auditor", on_event=on_event)
    s = run.summary
    assert killed and any(killed[0] in e and "lost" in e for e in s.events), s.events
    assert (s.audited, s.failed, s.status) == (6, [], "complete")
    _, lost = query_lake(results, "SELECT trajectory_id, error, final FROM lake_manifest WHERE status = 'failed'")
    assert lost and all(e.startswith("WorkerLost") and not final for _, e, final in lost)
    _, rows = query_lake(results, "SELECT count(*), count(DISTINCT trajectory_id) FROM audits")
    assert rows == [(6, 6)]  # every trajectory once, the lost batches redone
    _, rows = query_lake(results, "SELECT count(DISTINCT trajectory_id) FROM action_drivers")
    assert rows == [(6,)]


def test_a_failing_trajectory_is_retried_then_reported(tmp_path):
    from helpers.replay import email_trajectory

    marker = tmp_path / "flaky.marker"
    trajs = [email_trajectory(f"t{k}", "From: bob\nLunch on Friday?", "bob@acme.example", "Yes.",
                              "Read my inbox and reply to Bob.") for k in range(3)]
    trajs[1] = trajs[1].model_copy(update={"metadata": {"poison": True}})
    trajs[2] = trajs[2].model_copy(update={"metadata": {"flaky_marker": str(marker)}})
    src = tmp_path / "in.jsonl"
    src.write_text("".join(t.to_jsonl_line() + "\n" for t in trajs), encoding="utf-8")
    results = tmp_path / "results"
    args = ["trace", "--ray", str(src), "--results", str(results), "--workers", "1", "--retries", "1",
            "--auditor-factory", "helpers.distributed:failing_tiny_auditor", "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 3, res.output  # a trajectory was not audited
    out = json.loads(res.stdout)
    assert out["audited"] == 2 and marker.exists()
    assert out["failed"] == [{"trajectory_id": "t1", "error": "ValueError: poisoned trajectory t1", "attempts": 2}]
    _, rows = query_lake(results, "SELECT trajectory_id, attempt, status, final FROM lake_manifest ORDER BY ALL")
    assert rows == [("t0", 1, "audited", True), ("t1", 1, "failed", False), ("t1", 2, "failed", True),
                    ("t2", 1, "failed", False), ("t2", 2, "audited", True)]
    again = json.loads(CliRunner().invoke(app, args).stdout)  # only the failed one is tried again
    assert (again["audited"], again["resumed"], [f["trajectory_id"] for f in again["failed"]]) == (0, 2, ["t1"])


def test_a_worker_process_that_crashes_is_restarted_by_ray(tmp_path):
    """The process dies mid-batch (no exception to catch): Ray restarts the actor, which builds its
    auditor again, and reruns the call; the run completes without a failure."""
    from helpers.replay import email_trajectory

    marker = tmp_path / "crash.marker"
    traj = email_trajectory("crash", "From: bob\nLunch on Friday?", "bob@acme.example", "Yes.",
                            "Read my inbox and reply to Bob.")
    traj = traj.model_copy(update={"metadata": {"crash_marker": str(marker)}})
    src = tmp_path / "in.jsonl"
    src.write_text(traj.to_jsonl_line() + "\n", encoding="utf-8")
    run = audit_on_ray([str(src)], tmp_path / "results", options=RayOptions(workers=1, retries=1),
                       auditor_factory="helpers.distributed:failing_tiny_auditor")
    assert marker.exists()  # it did crash once
    assert (run.summary.audited, run.summary.failed) == (1, [])
    assert query_lake(tmp_path / "results", "SELECT count(*) FROM action_drivers WHERE trajectory_id = 'crash'")[1][0][0] > 0


def test_a_worker_that_cannot_start_stops_the_run(tmp_path, inputs):
    res = CliRunner().invoke(app, ["trace", "--ray", *inputs, "--results", str(tmp_path / "r"), "--workers", "1",
                                   "--auditor-factory", "helpers.distributed:broken_auditor"])
    assert res.exit_code == 2
    assert "cannot start the replay: OSError: no model at /nowhere" in res.output


@pytest.mark.slow
def test_the_embedded_model_on_ray_equals_the_single_process(tmp_path, examples_dir):
    """The real replay model in a Ray worker (the default factory) against `audit trace` here."""
    src = str(examples_dir / "injected_email.jsonl")
    db = tmp_path / "single.duckdb"
    runner = CliRunner()
    single = runner.invoke(app, ["trace", src, "--db", str(db), "--json"])
    assert single.exit_code == 0, single.output
    results = tmp_path / "results"
    res = runner.invoke(app, ["trace", "--ray", src, "--results", str(results), "--workers", "1", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["run_id"] == json.loads(single.stdout)["run_id"]
    sql = "SELECT trajectory_id, action_id, argument, segment_id, rank, score, share FROM argument_drivers"
    with Store(db, read_only=True) as store:
        theirs = _rows(store.query, sql)
        verdicts = _rows(store.query, "SELECT action_id, status, support FROM action_verdicts")
    mine = _rows(lambda q: query_lake(results, q), sql)
    assert len(mine) == len(theirs) > 0
    assert all(all(_close(x, y) for x, y in zip(m, t)) for m, t in zip(mine, theirs))
    got = _rows(lambda q: query_lake(results, q), "SELECT action_id, status, support FROM action_verdicts")
    assert all(all(_close(x, y) for x, y in zip(m, t)) for m, t in zip(got, verdicts))
