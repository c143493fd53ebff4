"""The Ray executor on a real local Ray cluster: the same rows as the local executor, failed
batches recorded and retried by a rerun, a dead actor restarted. Slow: Ray starts in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("ray", reason="the ray extra is not installed (make test installs it)")

from personasim.errors import BackendError  # noqa: E402
from personasim.executor import BackendRecipe, ExecutorSpec, simulate_to_parts  # noqa: E402
from personasim.executor import parts as P  # noqa: E402
from personasim.personas.meta import meta_personas  # noqa: E402
from personasim.survey.loaders import builtin_survey  # noqa: E402
from personasim.survey.questions import Survey  # noqa: E402
from personasim.survey.simulate import KEY_COLUMNS  # noqa: E402

pytestmark = pytest.mark.slow

POPULATION = pd.DataFrame({
    "person_id": [21, 22, 23], "state": ["TX", "VT", "OH"], "weight": [1.0, 2.0, 0.5],
    "age": [70, 25, 40], "sex": ["Male", "Female", "Female"],
    "race": ["White", "Asian", "White"],
})  # fmt: skip
EMBEDDED = BackendRecipe("llamacpp", options=(("n_threads", 1),))
"""The real embedded model, one thread, no cache: every answer is computed where it runs."""


def _survey() -> Survey:
    return Survey(id="two", questions=builtin_survey("elections").questions[:2])


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(KEY_COLUMNS).reset_index(drop=True)


def test_ray_gives_the_same_rows_and_probabilities_as_local(tmp_path: Path) -> None:
    import ray

    personas, survey = meta_personas(POPULATION), _survey()
    local = simulate_to_parts(personas, survey, tmp_path / "local", recipe=EMBEDDED,
                              executor=ExecutorSpec(batch_persons=2))  # fmt: skip
    spec = ExecutorSpec(kind="ray", batch_persons=2, num_cpus=2)
    remote = simulate_to_parts(personas, survey, tmp_path / "ray", recipe=EMBEDDED, executor=spec)
    assert not ray.is_initialized(), "the local Ray started for the run was not shut down"
    assert local.report.rows == remote.report.rows == 6 and remote.report.parts == 2
    a, b = _sorted(P.read_parts(tmp_path / "local")), _sorted(P.read_parts(tmp_path / "ray"))
    pd.testing.assert_frame_equal(a, b)  # same keys, same probabilities, bit for bit
    assert b["valid_mass"].gt(0).all()
    assert not list((tmp_path / "ray").glob(".*")), "temporary files left behind"


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray for the failure tests (the executor uses a Ray already initialized)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=256 * 2**20)  # fmt: skip
    yield ray
    ray.shutdown()


def test_failed_batch_becomes_failed_rows_that_a_rerun_retries(ray_cluster, tmp_path: Path
                                                               ) -> None:  # fmt: skip
    def flaky_endpoint():
        from personasim.llm.scripted import ScriptedStandIn

        def script(request, seen):
            if "Vermont" in request.messages[0].content:
                raise BackendError("HTTP 503 from the stand-in endpoint")
            return {label: 1.0 for label in request.labels}

        return ScriptedStandIn(choice_script=script, identity="endpoint")

    def healthy_endpoint():
        from personasim.llm.scripted import ScriptedStandIn

        return ScriptedStandIn(choice_script=lambda r, s: {label: 1.0 for label in r.labels},
                               identity="endpoint")  # fmt: skip

    personas, survey = meta_personas(POPULATION), _survey()
    spec = ExecutorSpec(kind="ray", batch_persons=1, retries=1)
    first = simulate_to_parts(personas, survey, tmp_path, executor=spec,
                              recipe=BackendRecipe(factory=flaky_endpoint))  # fmt: skip
    assert (first.report.failed_batches, first.report.failed_rows) == (1, 2)
    assert "HTTP 503" in first.report.first_error and first.report.rows == 4
    failed = pd.read_parquet(tmp_path / P.FAILED)
    assert failed["person_id"].tolist() == [22, 22]
    assert set(P.read_parts(tmp_path)["person_id"]) == {21, 23}
    rerun = simulate_to_parts(personas, survey, tmp_path, executor=spec,
                              recipe=BackendRecipe(factory=healthy_endpoint))  # fmt: skip
    assert rerun.report.rows == 2 and rerun.skipped == 4 and rerun.report.failed_batches == 0
    assert not (tmp_path / P.FAILED).exists()
    rows = P.read_parts(tmp_path)
    assert len(rows) == 6 and not rows.duplicated(KEY_COLUMNS).any()


def test_a_dead_actor_is_restarted_and_its_batch_retried(ray_cluster, tmp_path: Path) -> None:
    marker = tmp_path / "killed-once"

    def dies_once():
        from personasim.llm.scripted import ScriptedStandIn

        def script(request, seen):
            if "Ohio" in request.messages[0].content and not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)  # the actor process dies, as on a segfault or an OOM kill
            return {label: 1.0 + i for i, label in enumerate(request.labels)}

        return ScriptedStandIn(choice_script=script, identity="endpoint")

    personas, survey = meta_personas(POPULATION), _survey()
    run = simulate_to_parts(personas, survey, tmp_path / "out", recipe=BackendRecipe(
        factory=dies_once), executor=ExecutorSpec(kind="ray", batch_persons=1))  # fmt: skip
    assert marker.exists(), "the stand-in never killed its actor"
    assert run.report.rows == 6 and run.report.failed_batches == 0
    assert sorted(P.read_parts(tmp_path / "out")["person_id"].unique()) == [21, 22, 23]
