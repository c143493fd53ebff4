"""Start and stop a local llama.cpp OpenAI-compatible server (llama-cpp-python's ``[server]``).

Used by the tests and benchmarks to exercise the ``openai`` backend against a real endpoint on
127.0.0.1, and handy for users who want one process to serve a GGUF file to several clients.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from personasim.core.errors import BackendError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalLlamaServer:
    """``with LocalLlamaServer(path) as url:`` runs a server for the block; ``url`` ends in /v1."""

    def __init__(
        self,
        model_path: Path,
        log_path: Path,
        threads: int = 1,
        n_ctx: int = 2048,
        alias: str = "smollm2",
        startup_seconds: float = 90.0,
    ) -> None:
        self.model_path, self.log_path = model_path, log_path
        self.threads, self.n_ctx, self.alias = threads, n_ctx, alias
        self.startup_seconds = startup_seconds
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        """The server's command line."""
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.threads),
            "--n_threads_batch",
            str(self.threads),
            "--verbose",
            "False",
        ]

    def __enter__(self) -> str:
        with open(self.log_path, "wb") as sink:
            self.process = subprocess.Popen(self.command(), stdout=sink, stderr=subprocess.STDOUT)
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self.url

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.startup_seconds
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BackendError(
                    f"the llama.cpp server exited early: {self._log_tail()}",
                    hint="is llama-cpp-python installed with its [server] extra?",
                )
            try:
                if httpx.get(f"{self.url}/models", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise BackendError(f"the llama.cpp server did not answer in {self.startup_seconds}s")

    def _log_tail(self) -> str:
        try:
            return " ".join(self.log_path.read_text(errors="replace").split()[-60:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the server by its PID: SIGTERM, then SIGKILL after 15 s."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
