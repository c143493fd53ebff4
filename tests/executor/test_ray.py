"""The Ray executor on a real local Ray cluster: the same rows as the local executor, failed
batches recorded and retried by a rerun, a dead actor restarted. Slow: Ray starts in seconds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("ray", reason="the ray extra is not installed (make test installs it)")

from personasim.core import parts as P  # noqa: E402
from personasim.core.errors import BackendError  # noqa: E402
from personasim.core.keys import RESPONSE_KEY  # noqa: E402
from personasim.executor.base import (  # noqa: E402
    BackendRecipe,
    BatchPlan,  # noqa: E402
    ExecutorSpec,
)
from personasim.executor.local import run_local  # noqa: E402
from personasim.personas.meta import meta_personas  # noqa: E402
from personasim.pipeline.jobs import (
    SimulateJob,  # noqa: E402
    simulate_to_parts,
)
from personasim.simulate.plan import SimulateOptions  # noqa: E402
from personasim.survey.loaders import builtin_survey  # noqa: E402
from personasim.survey.questions import Survey  # noqa: E402

pytestmark = pytest.mark.slow

POPULATION = pd.DataFrame(
    {
        "person_id": [21, 22, 23],
        "state": ["TX", "VT", "OH"],
        "weight": [1.0, 2.0, 0.5],
        "age": [70, 25, 40],
        "sex": ["Male", "Female", "Female"],
        "race": ["White", "Asian", "White"],
    }
)
EMBEDDED = BackendRecipe("llamacpp", options=(("n_threads", 1),))
"""The real embedded model, one thread, no cache: every answer is computed where it runs."""


def _survey() -> Survey:
    return Survey(id="two", questions=builtin_survey("elections").questions[:2])


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(RESPONSE_KEY)).reset_index(drop=True)


def test_ray_gives_the_same_rows_and_probabilities_as_local(tmp_path: Path) -> None:
    import ray

    personas, survey = meta_personas(POPULATION), _survey()
    local = simulate_to_parts(
        personas,
        survey,
        tmp_path / "local",
        recipe=EMBEDDED,
        executor=ExecutorSpec(batch_persons=2),
    )
    spec = ExecutorSpec(kind="ray", batch_persons=2, num_cpus=2)
    remote = simulate_to_parts(personas, survey, tmp_path / "ray", recipe=EMBEDDED, executor=spec)
    assert not ray.is_initialized(), "the local Ray started for the run was not shut down"
    assert local.report.rows == remote.report.rows == 6 and remote.report.parts == 2
    assert remote.report.model_calls == 6 and remote.report.cache_hits == 0  # counted on actors
    a, b = _sorted(P.read_parts(tmp_path / "local")), _sorted(P.read_parts(tmp_path / "ray"))
    pd.testing.assert_frame_equal(a, b)  # same keys, same probabilities, bit for bit
    assert b["valid_mass"].gt(0).all()
    assert not list((tmp_path / "ray").glob(".*")), "temporary files left behind"


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray for the failure tests (the executor uses a Ray already initialized),
    started as the executor starts one: a raylet that misses Ray's startup deadline on a busy
    machine gets a second try."""
    import shutil

    import ray

    from personasim.executor.ray import _start_local

    temp = _start_local(ray, ExecutorSpec(kind="ray", num_cpus=2))
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def test_failed_batch_becomes_failed_rows_that_a_rerun_retries(ray_cluster, tmp_path: Path) -> None:
    def flaky_endpoint():
        from tests.support.scripted import ScriptedStandIn

        def script(request, seen):
            if "Vermont" in request.messages[0].content:
                raise BackendError("HTTP 503 from the stand-in endpoint")
            return {label: 1.0 for label in request.labels}

        return ScriptedStandIn(choice_script=script, identity="endpoint")

    def healthy_endpoint():
        from tests.support.scripted import ScriptedStandIn

        return ScriptedStandIn(
            choice_script=lambda r, s: {label: 1.0 for label in r.labels}, identity="endpoint"
        )

    personas, survey = meta_personas(POPULATION), _survey()
    spec = ExecutorSpec(kind="ray", batch_persons=1, retries=1)
    first = simulate_to_parts(
        personas, survey, tmp_path, executor=spec, recipe=BackendRecipe(factory=flaky_endpoint)
    )
    assert (first.report.failed_batches, first.report.failed_rows) == (1, 2)
    assert first.report.model == {
        "display_name": "scripted:endpoint",
        "identity": "endpoint",
        "settings": {},
    }  # provenance from the actors
    assert "HTTP 503" in first.report.first_error and first.report.rows == 4
    failed = pd.read_parquet(tmp_path / P.FAILED)
    assert failed["person_id"].tolist() == [22, 22]
    assert set(P.read_parts(tmp_path)["person_id"]) == {21, 23}
    rerun = simulate_to_parts(
        personas, survey, tmp_path, executor=spec, recipe=BackendRecipe(factory=healthy_endpoint)
    )
    assert rerun.report.rows == 2 and rerun.skipped == 4 and rerun.report.failed_batches == 0
    assert not (tmp_path / P.FAILED).exists()
    rows = P.read_parts(tmp_path)
    assert len(rows) == 6 and not rows.duplicated(list(RESPONSE_KEY)).any()


def _by_persona(request, seen):
    """Stand-in answers that differ per persona: a batch cut from the wrong rows would show."""
    weight = 1.0 + sum(map(ord, request.messages[0].content)) % 7
    return {label: weight**i for i, label in enumerate(request.labels)}


def _scripted():
    from tests.support.scripted import ScriptedStandIn

    return ScriptedStandIn(choice_script=_by_persona, identity="endpoint")


class _CountingPlan(BatchPlan):
    """A plan that counts the batches and spans the driver builds."""

    built = spans = 0

    def __getitem__(self, index):
        type(self).built += 1
        return super().__getitem__(index)

    def span(self, start: int, stop: int) -> pd.DataFrame:
        type(self).spans += 1
        return super().span(start, stop)


def test_actors_cut_from_object_store_chunks_the_batches_local_runs(
    ray_cluster, monkeypatch
) -> None:
    from personasim.executor import ray as R

    people = meta_personas(
        pd.concat(
            [
                POPULATION,
                POPULATION.assign(person_id=POPULATION["person_id"] + 10, state=["CA", "NY", "WA"]),
            ],
            ignore_index=True,
        )
    )
    # every person twice, far apart: a person's rows are not contiguous in the table
    personas = pd.concat([people, people.assign(generator="census-copy")], ignore_index=True)
    monkeypatch.setattr(R, "CHUNK_ROWS", 5)  # batches of 4 rows: chunks of batches 0-1 and 2
    plan = _CountingPlan.of_persons(personas, 2)
    assert len(plan) == 3 and not plan.frame["person_id"].is_monotonic_increasing
    stage = SimulateJob(_survey(), SimulateOptions(simulator="scripted:endpoint"))
    spec = ExecutorSpec(kind="ray", batch_persons=2)
    remote = list(R.run_ray(spec, stage, plan, BackendRecipe(factory=_scripted)))
    assert (_CountingPlan.built, _CountingPlan.spans) == (0, 2), "the driver cut batches"
    local = list(run_local(stage, plan, _scripted()))
    assert [r.index for r in remote] == [r.index for r in local] == [0, 1, 2]
    for a, b in zip(local, remote, strict=True):
        assert b.error is None and b.model_calls == a.model_calls == 2 * plan.rows(a.index)
        pd.testing.assert_frame_equal(a.rows, b.rows)
    assert sorted(pd.concat([r.rows for r in remote])["person_id"].unique()) == [
        21,
        22,
        23,
        31,
        32,
        33,
    ]


def test_a_dead_actor_is_restarted_and_its_batch_retried(ray_cluster, tmp_path: Path) -> None:
    marker = tmp_path / "killed-once"

    def dies_once():
        from tests.support.scripted import ScriptedStandIn

        def script(request, seen):
            if "Ohio" in request.messages[0].content and not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)  # the actor process dies, as on a segfault or an OOM kill
            return {label: 1.0 + i for i, label in enumerate(request.labels)}

        return ScriptedStandIn(choice_script=script, identity="endpoint")

    personas, survey = meta_personas(POPULATION), _survey()
    run = simulate_to_parts(
        personas,
        survey,
        tmp_path / "out",
        recipe=BackendRecipe(factory=dies_once),
        executor=ExecutorSpec(kind="ray", batch_persons=1),
    )
    assert marker.exists(), "the stand-in never killed its actor"
    assert run.report.rows == 6 and run.report.failed_batches == 0
    assert sorted(P.read_parts(tmp_path / "out")["person_id"].unique()) == [21, 22, 23]


def test_a_bug_on_an_actor_fails_the_run_with_its_traceback(ray_cluster, tmp_path: Path) -> None:
    from personasim.core.errors import InternalError, RemoteTraceback

    def buggy():
        from tests.support.scripted import ScriptedStandIn

        def script_with_a_bug(request, seen):
            if "Ohio" in request.messages[0].content:
                return {label: None + 1 for label in request.labels}  # TypeError
            return {label: 1.0 for label in request.labels}

        return ScriptedStandIn(choice_script=script_with_a_bug, identity="endpoint")

    spec = ExecutorSpec(kind="ray", batch_persons=1, retries=2)
    with pytest.raises(InternalError, match=r"in batch 2: TypeError") as caught:
        simulate_to_parts(
            meta_personas(POPULATION),
            _survey(),
            tmp_path,
            executor=spec,
            recipe=BackendRecipe(factory=buggy),
        )
    cause = caught.value.__cause__
    assert isinstance(cause, RemoteTraceback) and "script_with_a_bug" in str(cause)
    assert sorted(P.read_parts(tmp_path)["person_id"].unique()) == [21, 22]  # kept
    assert not (tmp_path / P.FAILED).exists()  # a bug is no failed batch for a rerun


def test_an_actor_dying_in_every_try_is_given_up_after_the_retries(
    ray_cluster, tmp_path: Path
) -> None:
    deaths = tmp_path / "deaths"
    deaths.mkdir()

    def always_dies():
        from tests.support.scripted import ScriptedStandIn

        def script(request, seen):
            if "Ohio" in request.messages[0].content:
                (deaths / str(os.getpid())).write_text("")
                os._exit(1)  # every try: as a batch that always runs out of memory
            return {label: 1.0 + i for i, label in enumerate(request.labels)}

        return ScriptedStandIn(choice_script=script, identity="endpoint")

    spec = ExecutorSpec(kind="ray", batch_persons=1, retries=1)
    run = simulate_to_parts(
        meta_personas(POPULATION),
        _survey(),
        tmp_path / "out",
        executor=spec,
        recipe=BackendRecipe(factory=always_dies),
    )
    assert len(list(deaths.iterdir())) == 2, "not retries + 1 tries"
    assert run.report.failed_batches == 1 and run.report.rows == 4
    assert "actor died in each of 2 tries" in run.report.first_error
    assert pd.read_parquet(tmp_path / "out" / P.FAILED)["person_id"].tolist() == [23, 23]
    assert sorted(P.read_parts(tmp_path / "out")["person_id"].unique()) == [21, 22]


def test_the_address_check_passes_a_real_gcs_and_refuses_what_is_not_one(ray_cluster) -> None:
    import socket

    from personasim.core.errors import ConfigError
    from personasim.executor.ray import check_ray_address

    check_ray_address(ray_cluster.get_runtime_context().gcs_address)  # a GCS: no error
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never speaks gRPC
        port = silent.getsockname()[1]
        with pytest.raises(ConfigError, match=r"no Ray GCS reply within 3 s: deadline_exceeded"):
            check_ray_address(f"127.0.0.1:{port}")


@pytest.fixture()
def client_server(ray_cluster) -> Iterator[int]:
    """A real Ray Client server (``ray://``; Ray's own ``ray.util.client.server`` in proxy
    mode) attached to the test's local cluster; its port."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gcs = ray_cluster.get_runtime_context().gcs_address
    server = subprocess.Popen(
        [sys.executable, "-m", "ray.util.client.server", "--address", gcs]
        + ["--host", "127.0.0.1", "--port", str(port), "--mode", "proxy"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.5):
                    break
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_a_ray_client_address_must_answer_as_a_ray_client_server(client_server: int) -> None:
    import http.server
    import socket
    import threading

    from personasim.core.errors import ConfigError
    from personasim.executor.ray import check_ray_address

    check_ray_address(f"ray://127.0.0.1:{client_server}")  # the real server: no error
    web = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:  # an HTTP/1 server on the port: it takes the connection, but it is no Ray
        with pytest.raises(ConfigError, match=r"no Ray Client server reply within 3 s: unavail"):
            check_ray_address(f"ray://127.0.0.1:{web.server_address[1]}")
    finally:
        web.shutdown()
        web.server_close()
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    with silent, pytest.raises(ConfigError, match=r"Client server reply within 3 s: deadline"):
        check_ray_address(f"ray://127.0.0.1:{silent.getsockname()[1]}")
