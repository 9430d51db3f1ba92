"""Property-based fuzzing of the file readers (Hypothesis draws every generator and mutation
choice in ``benchmarks/fuzzing.py``): mutated trajectory lines and OTLP JSON span dumps never
raise, every malformed record is reported at its line (and span id and field), every valid record
is loaded exactly once, and whatever is loaded can be written and stored.

Examples per test: ``AUDITOR_FUZZ_EXAMPLES`` (default 25, derandomized; e.g. 2000 for a long run).
The benchmark runs the same generators over 10,000+ inputs per kind (``benchmarks/bench_fuzz.py``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzzing  # benchmarks/ is on pytest's pythonpath
from auditor.collectors.loading import load_path

EXAMPLES = int(os.environ.get("AUDITOR_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=EXAMPLES <= 100,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _load(name: str, data: bytes):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(data)
        return str(path), load_path(path)


@FUZZ
@given(st.data())
def test_trajectory_lines(data):
    rng = fuzzing.DrawRng(data)
    text, cases = fuzzing.trajectory_cases(rng, rng.randint(1, 6))
    path, result = _load("run.jsonl", text)
    failures = fuzzing.check_trajectory_load(path, cases, result)
    assert not failures.all(), [(v.what, raw[:200]) for _, v, raw in cases]


@FUZZ
@given(st.data())
def test_span_dump_lines(data):
    rng = fuzzing.DrawRng(data)
    text, cases = fuzzing.span_cases(rng, rng.randint(1, 4))
    path, result = _load("spans.jsonl", text)
    failures = fuzzing.check_span_load(path, cases, result)
    assert not failures.all(), [(v.what, raw[:200]) for _, v, raw in cases]


def test_the_checks_catch_a_reader_that_keeps_bad_records():
    """The oracle is not vacuous: a result that keeps a rejected line's trajectory (or drops a
    valid one) fails the check."""
    import random

    from auditor.collectors.issues import LoadResult
    from auditor.trajectory import Trajectory

    rng = random.Random(1)
    text, cases = fuzzing.trajectory_cases(rng, 40)
    path, result = _load("run.jsonl", text)
    assert fuzzing.check_trajectory_load(path, cases, result).all() == []
    first_keep = next(i for i, (_, v, _) in enumerate(cases) if v.kind == "keep" and v.field != "dup-same")
    dropped = LoadResult(trajectories=[t for t in result.trajectories if t.id != cases[first_keep][0]["id"]],
                         issues=result.issues)
    assert fuzzing.check_trajectory_load(path, cases, dropped).lost
    first_reject = next(i for i, (_, v, _) in enumerate(cases) if v.kind == "reject")
    silent = LoadResult(trajectories=result.trajectories,
                        issues=[i for i in result.issues if i.line != first_reject + 1])
    assert fuzzing.check_trajectory_load(path, cases, silent).wrong
    extra = Trajectory(id="extra", messages=[{"role": "user", "content": "x"}])
    assert fuzzing.check_trajectory_load(path, cases, LoadResult(trajectories=[*result.trajectories, extra],
                                                                 issues=result.issues)).wrong
