"""The Ray executor: batches of persons mapped by a pool of Ray Data actors, one backend each.

* **Pool**: ``map_batches`` with a callable class and ``compute=ActorPoolStrategy(size=n)`` (the
  current API; not the deprecated ``concurrency=``). ``n`` is ``ExecutorSpec.actors`` or what
  fits in the cluster's CPUs after leaving room for Ray Data's own tasks (an actor pool that
  takes every CPU starves the tasks that feed it: the job hangs). Each actor reserves
  ``cpus_per_actor`` CPUs and ``memory_per_actor_mb`` of memory.
* **Backend**: each actor opens one backend in its constructor (the embedded model is loaded once
  per actor, with ``cpus_per_actor`` threads; an ``openai`` endpoint such as a vLLM fleet behind
  one URL is shared by all actors).
* **Failures**: an actor that dies (segfault, OOM kill, lost node) is restarted and its batch
  retried: Ray Data's actor pools default to ``max_restarts=-1`` and ``max_task_retries=-1``
  (Ray 2.60 deprecates passing them to ``map_batches``, so they are left at those defaults).
  A :class:`StartCounter` actor bounds it: a batch whose actor died in each of ``retries + 1``
  tries comes back failed (its rows go to ``_failed.parquet``) and the run goes on. A
  batch whose stage fails in the backend or on its data is retried ``retries`` times inside the
  actor and then comes back as a failed result, which the driver records as failed rows that a
  rerun retries; the job goes on. Any other exception comes back to the driver and fails the run
  (:func:`~personasim.executor.base.raise_stop`; a bug with its traceback).
* **Input**: the driver puts the pending input into the object store in chunks of about
  ``CHUNK_ROWS`` rows (whole batches; Ray spills chunks to disk beyond the store's capacity); the
  dataset is ``ray.data.range`` over the batch indices, and each actor cuts its batch from its
  chunk (kept while the next batches come from the same chunk). The driver builds one chunk at a
  time and never a batch, except to list a failed batch's keys.
* **Order**: results come back in batch order (``preserve_order``), so the driver commits parts
  in the same order as the local executor would.
* **Cluster**: with no ``address`` a local Ray is started for the run (``num_cpus`` bounded, no
  dashboard, logs in a temporary folder) and shut down after; ``auto`` or ``ray://host:port``
  joins an existing cluster. A Ray already initialized in this process is used as it is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import pickle
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from personasim.core.errors import ConfigError
from personasim.executor.base import (
    BackendRecipe,
    BatchPlan,
    BatchResult,
    ExecutorSpec,
    Stage,
    batch_rows,
    dumps,
    loads,
    model_provenance,
    run_with_retries,
)

RESERVED_CPUS_SHARE = 0.25
"""Share of the cluster's CPUs left to Ray Data's own tasks (at least one CPU)."""
RESULT_FIELDS = (
    "index",
    "rows",
    "error",
    "attempts",
    "seconds",
    "model_calls",
    "cache_hits",
    "bug",
    "fatal",
    "model",
)
"""Columns an actor returns per batch."""
LOCAL_OBJECT_STORE_MB = 512
"""Object store of a local Ray started by personasim (Ray spills objects beyond it to disk)."""
CHUNK_ROWS = 10_000
"""Input rows per object-store chunk (plus the rest of the chunk's last batch): bounds what
the driver builds at once and what each actor fetches and keeps."""


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError(
            "the ray executor needs Ray Data", hint="pip install 'personasim[ray]'"
        ) from None
    return ray


def pool_size(spec: ExecutorSpec, cluster_cpus: float) -> int:
    """Actors that fit in ``cluster_cpus`` after reserving a share (>= 1 CPU) for Ray Data."""
    usable = cluster_cpus - max(1.0, RESERVED_CPUS_SHARE * cluster_cpus)
    fit = math.floor(usable / spec.cpus_per_actor + 1e-9)
    if fit < 1:
        raise ConfigError(
            f"the Ray cluster has {cluster_cpus:g} CPUs: too few for one actor of "
            f"{spec.cpus_per_actor:g} CPUs plus one CPU for Ray Data's tasks",
            hint="lower [executor] cpus_per_actor or use a bigger cluster",
        )
    return min(spec.actors, fit) if spec.actors else fit


@dataclass(frozen=True)
class InputChunks:
    """Where each batch's input rows are: the pending input in the object store as a few chunks
    (frames of whole consecutive batches), and the batch offsets to cut them (small arrays)."""

    refs: tuple[Any, ...]
    """Object refs of the chunks, in order (owned by the driver for the run)."""
    chunk_of: np.ndarray
    """Chunk of each batch."""
    offsets: np.ndarray
    """Start row of each batch in the plan, and the end (``len(batches) + 1`` values)."""
    first: np.ndarray
    """First batch of each chunk."""

    def rows_of(self, index: int) -> tuple[int, int, int]:
        """Chunk of batch ``index`` and its row range inside that chunk."""
        chunk = int(self.chunk_of[index])
        base = self.offsets[self.first[chunk]]
        return chunk, int(self.offsets[index] - base), int(self.offsets[index + 1] - base)


def chunk_bounds(sizes: np.ndarray, chunk_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch offsets, the chunk of each batch and the first batch of each chunk, for batches of
    ``sizes`` rows: a chunk takes the batches that start in its ``chunk_rows`` rows, so it holds
    at most ``chunk_rows`` rows plus the rest of its last batch."""
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    starts, chunk_of = np.unique(offsets[:-1] // chunk_rows, return_inverse=True)
    first = np.searchsorted(chunk_of, np.arange(len(starts)))
    return offsets, chunk_of.astype(np.int64), first.astype(np.int64)


def _span(batches: Sequence[pd.DataFrame], start: int, stop: int) -> pd.DataFrame:
    """Batches ``start`` to ``stop - 1`` as one frame (a :class:`BatchPlan` cuts it at once)."""
    if isinstance(batches, BatchPlan):
        return batches.span(start, stop)
    return pd.concat([batches[i] for i in range(start, stop)], ignore_index=True)


def put_chunks(ray: Any, batches: Sequence[pd.DataFrame], chunk_rows: int) -> InputChunks:
    """Put the input of ``batches`` into the object store chunk by chunk (the driver builds one
    chunk at a time; Ray spills chunks to disk when the store is full)."""
    if isinstance(batches, BatchPlan):
        sizes = np.diff(batches.offsets)
    else:
        sizes = np.array([batch_rows(batches, i) for i in range(len(batches))], dtype=np.int64)
    offsets, chunk_of, first = chunk_bounds(sizes, chunk_rows)
    ends = [*first[1:].tolist(), len(batches)]
    refs = tuple(ray.put(_span(batches, int(a), int(b))) for a, b in zip(first, ends, strict=True))
    return InputChunks(refs, chunk_of, offsets, first)


class StartCounter:
    """How often each batch was started on an actor (a Ray actor of its own, on no CPU): an actor
    that dies in a batch is restarted and given the batch again by Ray Data, without limit; the
    count is what bounds it."""

    def __init__(self) -> None:
        self.starts: dict[int, int] = {}

    def start(self, index: int) -> int:
        """Count one more start of batch ``index``; how many there have been."""
        self.starts[index] = self.starts.get(index, 0) + 1
        return self.starts[index]


def died_result(index: int, starts: int) -> BatchResult:
    """The failed result of a batch whose actor died in each of its ``starts`` tries."""
    return BatchResult(
        index,
        None,
        f"its actor died in each of {starts} tries (killed, out of "
        "memory or crashed); the batch was given up",
        starts,
    )


class BatchWorker:
    """A Ray Data actor: opens one backend, then runs the stage on every batch it is given.

    A batch arrives as its index only; the actor cuts it from its chunk of the input, fetched
    from the object store (the last chunk is kept: consecutive batches share it). A batch
    started more than ``retries + 1`` times (its actor died in every try) comes back failed
    without running (:class:`StartCounter`)."""

    def __init__(
        self,
        recipe: BackendRecipe,
        stage: Stage,
        retries: int,
        threads: int,
        chunks: InputChunks,
        counter: Any,
    ) -> None:
        self.backend = recipe.open(threads=threads)
        self.model = model_provenance(self.backend)
        self.stage = stage
        self.retries = retries
        self.chunks = chunks
        self.counter = counter
        self.held: tuple[int, pd.DataFrame] | None = None

    def batch(self, index: int) -> pd.DataFrame:
        """Batch ``index`` of the plan (a new, writable frame)."""
        import ray

        chunk, start, stop = self.chunks.rows_of(index)
        if self.held is None or self.held[0] != chunk:
            self.held = None  # let the previous chunk go before fetching the next
            self.held = (chunk, ray.get(self.chunks.refs[chunk]))
        return self.held[1].iloc[start:stop].reset_index(drop=True).copy()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        """Run the stage on each batch index in ``batch`` (one, with ``batch_size=1``)."""
        import ray

        out: dict[str, list] = {name: [] for name in RESULT_FIELDS}
        for index in map(int, batch["id"]):
            starts = ray.get(self.counter.start.remote(index))
            result = (
                died_result(index, starts - 1)
                if starts > self.retries + 1
                else run_with_retries(
                    self.stage, self.backend, self.batch(index), index, self.retries
                )
            )
            out["index"].append(result.index)
            out["rows"].append(dumps(result.rows) if result.rows is not None else b"")
            out["error"].append(result.error or "")
            for name in RESULT_FIELDS[3:-2]:
                out[name].append(getattr(result, name))
            out["fatal"].append(pickle.dumps(result.fatal) if result.fatal is not None else b"")
            out["model"].append(json.dumps(self.model))
        return out


LOCAL_START_TRIES = 2
"""Tries to start a local Ray: a raylet that misses Ray's startup deadline (seen on a busy
2-core machine, mostly right after another local Ray in the same process stopped) gets one more
chance on a fresh temp dir before the error reaches the user."""


STARTUP_TIMEOUTS = ("timed out during startup", "Timed out waiting for file")
"""How Ray says a local node's raylet or GCS server missed its startup deadline."""


def _startup_timeout(error: Exception) -> bool:
    """Whether ``error`` is a local Ray node that missed its startup deadline."""
    return any(text in str(error) for text in STARTUP_TIMEOUTS)


def _start_local(ray: Any, spec: ExecutorSpec) -> str:
    """Start a local Ray for one run; its temp dir (removed by the caller)."""
    cpus = spec.num_cpus or len(os.sched_getaffinity(0))
    for attempt in range(1, LOCAL_START_TRIES + 1):
        temp = tempfile.mkdtemp(prefix="psim-ray-")
        try:
            ray.init(
                num_cpus=cpus,
                include_dashboard=False,
                log_to_driver=False,
                _temp_dir=temp,
                object_store_memory=LOCAL_OBJECT_STORE_MB * 2**20,
                logging_level=logging.WARNING,
            )
        except Exception as error:  # Ray raises a bare Exception for a node that timed out
            ray.shutdown()
            shutil.rmtree(temp, ignore_errors=True)
            if not _startup_timeout(error) or attempt == LOCAL_START_TRIES:
                raise
            time.sleep(2.0)
        else:
            return temp
    raise RuntimeError("no local Ray start was tried")  # only with LOCAL_START_TRIES < 1


CONNECT_TIMEOUT_SECONDS = 3.0
"""How long :func:`check_ray_address` waits for a cluster's address to answer."""
DEFAULT_PORTS = {"ray": 10001, "gcs": 6379}
"""The port of a Ray Client address (``ray://host``) and of a GCS address without one."""
GCS_PROBE = "/ray.rpc.NodeInfoGcsService/GetClusterId"
"""A GCS method every Ray cluster serves (asked with an empty request: any reply but
"unavailable", "deadline exceeded" or "unimplemented" means a GCS is there)."""
CLIENT_PROBE = "/ray.rpc.RayletDriver/ClusterInfo"
"""A method every Ray Client server serves (``ray://``; asked the same way: a real one answers,
e.g. "unauthenticated" without a token; an HTTP/1 server gives "unavailable", a gRPC server of
something else "unimplemented")."""


def check_ray_address(address: str | None, where: str = "--ray-address") -> None:
    """Refuse, in about :data:`CONNECT_TIMEOUT_SECONDS`, a cluster address where no Ray
    answers (Ray itself retries for about 30 s, printing a warning a second). A GCS address
    (``host:port``) and a Ray Client address (``ray://host:port``) are each asked one gRPC call
    of their service (a port that accepts any connection, or serves something else, does not
    pass). ``auto`` and no address are not checked (a local Ray is found or started)."""
    if not address or address == "auto":
        return
    client = address.startswith("ray://")
    rest = address.removeprefix("ray://").split("/", 1)[0]
    host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if port and not port.isdigit():
        reason: str | None = f"{port!r} is not a port number"
    else:
        target = (host.strip("[]"), int(port or DEFAULT_PORTS["ray" if client else "gcs"]))
        probe = (CLIENT_PROBE, "Ray Client server") if client else (GCS_PROBE, "Ray GCS")
        reason = _tcp_silent(target) or _grpc_silent(target, *probe)
    if reason is not None:
        raise ConfigError(
            f"{where}: no Ray cluster answers at {address!r} ({reason})",
            hint="start one with `ray start --head`, check the host and port, or leave the "
            "address out to run a local Ray for this run",
        )


def _tcp_silent(target: tuple[str, int]) -> str | None:
    """Why ``target`` takes no TCP connection (None when it does)."""
    try:
        with socket.create_connection(target, CONNECT_TIMEOUT_SECONDS):
            return None
    except TimeoutError:
        return f"no connection within {CONNECT_TIMEOUT_SECONDS:g} s"
    except OSError as error:
        return error.strerror or type(error).__name__


def _grpc_silent(target: tuple[str, int], method: str, service: str) -> str | None:
    """Why no ``service`` answers ``method`` at ``target`` (None when one does, or when grpc,
    which comes with Ray, is not installed: then Ray's own error follows)."""
    try:
        import grpc
    except ImportError:
        return None
    channel = grpc.insecure_channel(f"{target[0]}:{target[1]}")
    try:
        channel.unary_unary(method)(b"", timeout=CONNECT_TIMEOUT_SECONDS)
    except grpc.RpcError as error:
        code = error.code()  # type: ignore[attr-defined]
        silent = (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.UNIMPLEMENTED,
        )
        if code in silent:
            return f"no {service} reply within {CONNECT_TIMEOUT_SECONDS:g} s: {code.name.lower()}"
    finally:
        channel.close()
    return None


@contextlib.contextmanager
def ray_session(spec: ExecutorSpec) -> Iterator[Any]:
    """Connect to (or start) Ray for one run; stop only what this function started."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    temp = None
    if spec.address:
        check_ray_address(spec.address, "executor address")
        try:
            with warnings.catch_warnings():  # Ray's own connection warnings: the error says it
                warnings.simplefilter("ignore")
                ray.init(address=spec.address, log_to_driver=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as error:
            ray.shutdown()  # a failed ray:// connection leaves client mode on in this process
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ConfigError(
                f"cannot join the Ray cluster at {spec.address!r}: {first}",
                hint="start one with `ray start --head`, or leave the address "
                "out to run a local Ray for this run",
            ) from None
    else:
        temp = _start_local(ray, spec)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    try:
        yield ray
    finally:
        ray.shutdown()
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


def run_ray(
    spec: ExecutorSpec, stage: Stage, batches: Sequence[pd.DataFrame], recipe: BackendRecipe
) -> Iterator[BatchResult]:
    """Yield each batch's result in batch order, computed on a Ray Data actor pool.

    The input goes to the object store in chunks of about ``CHUNK_ROWS`` rows; the dataset
    holds batch indices only (``ray.data.range``, one index per block), so neither the driver
    nor Ray Data ever holds all batches as separate frames or payloads."""
    if not batches:
        return
    with ray_session(spec) as ray:
        actors = min(pool_size(spec, float(ray.cluster_resources().get("CPU", 0))), len(batches))
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        chunks = put_chunks(ray, batches, CHUNK_ROWS)
        counter = ray.remote(num_cpus=0)(StartCounter).remote()
        mapped = ray.data.range(len(batches), override_num_blocks=len(batches)).map_batches(
            BatchWorker,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=actors),
            fn_constructor_kwargs={
                "recipe": recipe,
                "stage": stage,
                "retries": spec.retries,
                "threads": max(1, int(spec.cpus_per_actor)),
                "chunks": chunks,
                "counter": counter,
            },
            num_cpus=spec.cpus_per_actor,
            memory=spec.memory_per_actor_mb * 2**20,
        )
        for row in mapped.iter_rows():
            error = str(row["error"]) or None
            rows = loads(row["rows"]) if not error else None
            fatal = pickle.loads(row["fatal"]) if row["fatal"] else None  # noqa: S301 - ours
            yield BatchResult(
                int(row["index"]),
                rows,
                error,
                int(row["attempts"]),
                float(row["seconds"]),
                int(row["model_calls"]),
                int(row["cache_hits"]),
                json.loads(row["model"]),
                fatal,
                str(row["bug"]),
            )
