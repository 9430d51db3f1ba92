"""Shared test set-up: offline, deterministic, gentle on a 2-core machine."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# before anything imports torch: OpenMP's waiting threads sleep instead of spinning, so a test run
# beside other work slows down in proportion instead of stalling (docs/benchmarks/threads.md)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# spread over pytest-xdist workers (`make test`), each worker and the CLIs it starts take their share
# of the cores: workers x threads = cores, instead of every worker's torch spreading over all of them
if os.environ.get("PYTEST_XDIST_WORKER_COUNT", "").isdigit():
    os.environ.setdefault("OMP_NUM_THREADS",
                          str(max(1, len(os.sched_getaffinity(0)) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES


@pytest.fixture(scope="session")
def embedded_model():
    """The embedded SmolLM2 (provisioned by `make test` before pytest runs), loaded once."""
    from auditor.model_registry import load_model

    return load_model()


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory):
    """The session's one real vLLM server (see `helpers.vllm`); started on first use."""
    from helpers.vllm import start_session_server

    srv = start_session_server(tmp_path_factory.mktemp("vllm"))
    try:
        yield srv
    finally:
        if srv.server is not None:
            srv.server.stop()


#: The vLLM tier: every test in it runs on the session's one vLLM server (`helpers.vllm`).
E2E_DIR = "tests/e2e/"
#: Run first when the suite is spread over workers (pytest-xdist, `make test`): the longest units,
#: so that none of them starts last and leaves one worker running alone at the end.
LONG_FIRST = (E2E_DIR, "tests/distributed/test_ray.py", "tests/evaluation/test_cli.py", "tests/interop/test_phoenix.py")


def work_unit(nodeid: str) -> str:
    """The unit one pytest-xdist worker runs whole: the vLLM tier (its server is a session fixture,
    started once per worker that needs it), else a module (its fixtures, e.g. embedded audits, a
    Ray cluster or a Phoenix server, are built once)."""
    module = nodeid.split("::", 1)[0]
    return E2E_DIR if module.startswith(E2E_DIR) else module


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest units first (workers take units in collection order); stable, so each unit's
    tests keep their order and stay together."""
    rank = {unit: i for i, unit in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(work_unit(item.nodeid), len(rank)))


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: unknown (and unused) where it is not installed
def pytest_xdist_make_scheduler(config: pytest.Config, log):  # noqa: ANN201 (xdist's own type)
    """``--dist loadscope`` by our units (`work_unit`) instead of xdist's module-or-class scopes."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return WorkUnitScheduling(config, log)
