"""Part files, batching and the executor driver (local executor; no Ray needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personasim.core import parts as P
from personasim.core.errors import (
    BackendError,
    ConfigError,
    EndpointUnreachable,
    InternalError,
    RemoteTraceback,
)
from personasim.core.keys import RESPONSE_KEY
from personasim.executor.base import BackendRecipe, ExecutorSpec, run_with_retries
from personasim.executor.ray import InputChunks, chunk_bounds, pool_size
from personasim.executor.run import run_batches
from personasim.personas.meta import meta_personas
from personasim.pipeline.jobs import drop_done, person_batches, simulate_to_parts
from personasim.survey.loaders import builtin_survey
from tests.support.scripted import ScriptedStandIn

POPULATION = pd.DataFrame(
    {
        "person_id": [5, 6, 7, 8, 9],
        "state": ["TX", "VT", "OH", "CA", "NY"],
        "weight": [1.0] * 5,
        "age": [70, 25, 40, 33, 51],
        "sex": ["Male", "Female", "Female", "Male", "Female"],
        "race": ["White", "Asian", "White", "Black or African American", "White"],
    }
)


def _lean_left(request, seen: int) -> dict[str, float]:
    """Stand-in script: a fixed distribution per number of options."""
    return {label: 1.0 + i for i, label in enumerate(request.labels)}


def _dead_pid() -> int:
    """The id of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_parts_commit_in_order_and_keys_come_from_parts(tmp_path: Path) -> None:
    assert P.part_paths(tmp_path / "none") == []
    assert len(P.done_keys(tmp_path / "none", ["a"])) == 0
    for i in range(11):
        P.commit_part(pd.DataFrame({"a": [i], "b": [f"x{i}"]}), tmp_path)
    assert [p.name for p in P.part_paths(tmp_path)][-2:] == [
        "part-00009.parquet",
        "part-00010.parquet",
    ]
    assert P.next_part_number(tmp_path) == 11
    done = P.done_keys(tmp_path, ["a", "b"])
    probe = pd.DataFrame({"a": [3, 3, 10, 11], "b": ["x3", "x4", "x10", "x11"]})
    assert len(done) == 11 and done.contains(probe).tolist() == [True, False, True, False]
    assert done.contains(probe.astype(str)).tolist() == [True, False, True, False]
    assert P.read_parts(tmp_path)["a"].tolist() == list(range(11))
    assert P.read_parts(tmp_path, ["b"]).columns.tolist() == ["b"]


def test_stale_temps_of_dead_writers_are_removed_live_ones_kept(tmp_path: Path) -> None:
    P.commit_part(pd.DataFrame({"a": [1]}), tmp_path)
    dead = tmp_path / f".part-00001.parquet.{_dead_pid()}.tmp"
    live = tmp_path / f".part-00001.parquet.{os.getppid()}.tmp"
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    assert P.remove_stale_temps(tmp_path) == 1
    assert not dead.exists() and live.exists()
    assert len(P.read_parts(tmp_path)) == 1  # temporary files are never read


def test_failed_record_written_and_cleared(tmp_path: Path) -> None:
    P.write_failed(tmp_path, pd.DataFrame({"a": [1], "error": ["boom"]}))
    assert (tmp_path / P.FAILED).is_file() and P.part_paths(tmp_path) == []
    P.write_failed(tmp_path, pd.DataFrame())
    assert not (tmp_path / P.FAILED).exists()


def test_batches_are_persona_major() -> None:
    frame = pd.DataFrame({"person_id": [3, 3, 1, 1, 2, 2, 4], "tier": list("ababab") + ["a"]})
    batches = person_batches(frame, 2)
    assert [b["person_id"].tolist() for b in batches] == [[3, 3, 1, 1], [2, 2, 4]]
    assert len(person_batches(frame.iloc[:0], 2)) == 0 and list(person_batches(frame[:0], 2)) == []
    index = P.KeyIndex(["person_id", "tier"])
    done = P.KeyIndex(
        index.key, index.hash(pd.DataFrame({"person_id": ["3", "2"], "tier": ["a", "b"]}))
    )
    kept = drop_done(frame, done)
    pairs = set(zip(kept.person_id.astype(str), kept.tier, strict=True))
    assert len(kept) == 5 and ("3", "a") not in pairs


def test_lazy_plan_cuts_the_rows_the_eager_cut_did_with_persons_scattered() -> None:
    # persons' rows are NOT contiguous: 7's rows are 0, 3, 6; 5's rows are 1, 4; ...
    frame = pd.DataFrame(
        {
            "person_id": [7, 5, 9, 7, 5, 2, 7, 9, 8, 2],
            "tier": list("abcdefghij"),
            "weight": [float(i) for i in range(10)],
        }
    )
    plan = person_batches(frame, 2)
    codes, _ = pd.factorize(frame["person_id"])  # the eager cut the plan replaced
    eager = [frame[codes // 2 == g].reset_index(drop=True) for g in range(codes.max() // 2 + 1)]
    assert len(plan) == len(eager) == 3
    for lazy, expected in zip(plan, eager, strict=True):
        pd.testing.assert_frame_equal(lazy, expected)
    assert [b["tier"].tolist() for b in plan] == [list("abdeg"), list("cfhj"), list("i")]
    assert [plan.rows(i) for i in range(3)] == [5, 4, 1]
    pd.testing.assert_frame_equal(plan[-1], eager[2])
    pd.testing.assert_frame_equal(plan.span(1, 3), pd.concat(eager[1:], ignore_index=True))
    assert [len(b) for b in plan[0:2]] == [5, 4]
    with pytest.raises(IndexError):
        plan[3]


def test_ray_chunks_hold_whole_batches_and_bounded_rows() -> None:
    sizes = np.array([3, 4, 2, 9, 1, 1, 5])  # rows per batch; batch offsets 0 3 7 9 18 19 20 25
    offsets, chunk_of, first = chunk_bounds(sizes, 5)
    assert offsets.tolist() == [0, 3, 7, 9, 18, 19, 20, 25]
    # a chunk takes the batches starting in its 5 rows: chunk 1 = batches 2, 3 (rows 7-17)
    assert chunk_of.tolist() == [0, 0, 1, 1, 2, 2, 3] and first.tolist() == [0, 2, 4, 6]
    chunks = InputChunks(("a", "b", "c", "d"), chunk_of, offsets, first)
    assert [chunks.rows_of(i) for i in (0, 1, 3, 4, 5, 6)] == [
        (0, 0, 3),
        (0, 3, 7),
        (1, 2, 11),
        (2, 0, 1),
        (2, 1, 2),
        (3, 0, 5),
    ]


@pytest.mark.parametrize(
    ("cpus", "per", "asked", "expected"),
    [
        (2, 1.0, None, 1),
        (16, 1.0, None, 12),
        (16, 2.0, None, 6),
        (16, 1.0, 3, 3),
        (16, 1.0, 99, 12),
    ],
)
def test_pool_leaves_cpus_for_ray_data(
    cpus: int, per: float, asked: int | None, expected: int
) -> None:
    spec = ExecutorSpec(kind="ray", cpus_per_actor=per, actors=asked)
    assert pool_size(spec, cpus) == expected


def test_pool_too_small_is_one_line() -> None:
    with pytest.raises(ConfigError, match="too few for one actor"):
        pool_size(ExecutorSpec(kind="ray", cpus_per_actor=2.0), 2)


def test_a_failing_batch_is_retried_then_returned_as_failed() -> None:
    calls = []

    def stage(backend, batch):
        calls.append(1)
        raise BackendError("endpoint said 503")

    result = run_with_retries(stage, ScriptedStandIn(), pd.DataFrame({"x": [1]}), 4, retries=2)
    assert len(calls) == 3 and result.rows is None and result.attempts == 3
    assert result.index == 4 and result.error.startswith("BackendError: endpoint said 503")


@pytest.mark.parametrize(
    "raised",
    [
        KeyError("tier"),
        TypeError("bad operand"),
        EndpointUnreachable("http://127.0.0.1:9/v1 is down"),
    ],
)
def test_a_bug_or_a_dead_endpoint_fails_the_run_not_the_batch(tmp_path: Path, raised) -> None:
    calls = []

    def stage(backend, batch):
        calls.append(1)
        if len(calls) == 2:
            raise raised
        return batch

    stage.failed_rows = lambda batch, error: batch.assign(error=error)
    frame = pd.DataFrame({"person_id": [1, 2, 3]})
    expected = EndpointUnreachable if isinstance(raised, EndpointUnreachable) else InternalError
    with pytest.raises(expected) as caught:
        run_batches(
            ExecutorSpec(batch_persons=1),
            stage,
            person_batches(frame, 1),
            tmp_path,
            backend=ScriptedStandIn(),
        )
    assert len(calls) == 2, "retried, or the job went on after it"
    assert [len(pd.read_parquet(p)) for p in P.part_paths(tmp_path)] == [1]  # the batch before
    if expected is InternalError:
        line = caught.value.one_line()
        assert f"in batch 1: {type(raised).__name__}" in line and "PERSONASIM_TRACEBACK" in line
        assert isinstance(caught.value.__cause__, RemoteTraceback)
        assert "in stage" in str(caught.value.__cause__)  # where it was raised


def test_a_bug_at_the_cli_is_one_line_or_its_traceback(tmp_path: Path, monkeypatch, capsys) -> None:
    from personasim.cli import options
    from personasim.cli.main import main
    from personasim.pipeline import jobs

    def broken(self, backend, batch):
        return batch.no_such_column

    recipe = BackendRecipe(factory=lambda: ScriptedStandIn(lambda r, s: "{}"))
    monkeypatch.setattr(options, "backend_recipe", lambda *args: recipe)
    monkeypatch.setattr(jobs.PersonaJob, "__call__", broken)
    POPULATION.to_parquet(tmp_path / "population.parquet", index=False)
    argv = [
        "personas",
        "--population",
        str(tmp_path / "population.parquet"),
        "--tiers",
        "meta,descriptive",
        "--out",
        str(tmp_path / "out"),
        "--no-cache",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a bug stopped the run" in err[0] and "AttributeError" in err[0]
    monkeypatch.setenv("PERSONASIM_TRACEBACK", "1")
    with pytest.raises(InternalError) as caught:
        main(argv)
    assert "in broken" in str(caught.value.__cause__)


def test_local_parts_resume_and_match_plain_simulate(tmp_path: Path) -> None:
    from personasim.simulate.run import simulate

    personas = meta_personas(POPULATION)
    survey = builtin_survey("elections")
    stand_in = ScriptedStandIn(choice_script=_lean_left)
    spec = ExecutorSpec(batch_persons=2)
    first = simulate_to_parts(personas.iloc[:3], survey, tmp_path, backend=stand_in, executor=spec)
    assert first.report.parts == 2 and first.report.rows == 9
    assert first.report.model_calls == 9 and first.report.cache_hits == 0
    calls = len(stand_in.calls)
    again = simulate_to_parts(personas, survey, tmp_path, backend=stand_in, executor=spec)
    assert again.skipped == 9 and again.report.rows == 6 and len(stand_in.calls) == calls + 6
    rows = P.read_parts(tmp_path)
    plain = simulate(personas, survey, ScriptedStandIn(choice_script=_lean_left)).responses
    assert not rows.duplicated(list(RESPONSE_KEY)).any()
    ordered = [f.sort_values(list(RESPONSE_KEY)).reset_index(drop=True) for f in (rows, plain)]
    pd.testing.assert_frame_equal(*ordered)


def test_bad_model_spec_fails_before_any_work(tmp_path: Path) -> None:
    personas = meta_personas(POPULATION)
    with pytest.raises(ConfigError, match="unknown backend"):
        simulate_to_parts(
            personas, builtin_survey("elections"), tmp_path, recipe=BackendRecipe("lamacpp")
        )
    assert P.part_paths(tmp_path) == []


def test_read_table_of_a_parts_folder_reads_only_what_is_asked(tmp_path: Path) -> None:
    from personasim.core.tables import read_table

    for i in range(3):
        P.commit_part(
            pd.DataFrame(
                {
                    "question_id": [f"q{i}", "q9"],
                    "raw": ["x", "y"],
                    "probs": [[0.5, 0.5], [1.0, 0.0]],
                }
            ),
            tmp_path,
        )
    (tmp_path / ".part-00003.parquet.1.tmp").write_bytes(b"half")
    P.write_failed(tmp_path, pd.DataFrame({"question_id": ["q5"], "error": ["boom"]}))
    frame = read_table(
        tmp_path, "responses table", exclude=("raw",), only=("question_id", ["q0", "q2"])
    )
    assert sorted(frame["question_id"]) == ["q0", "q2"] and "raw" not in frame.columns
    assert len(read_table(tmp_path)) == 6  # temporary and _failed files are never read


@pytest.mark.slow  # a subprocess and a Ray client that gives up (timeouts shortened)
def test_an_unreachable_ray_cluster_is_one_line(tmp_path: Path) -> None:
    """The real command in its own process: a failed Ray client leaves gRPC threads behind,
    and a local Ray started later in the same process (the next tests) could then miss its
    startup deadline."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    population = tmp_path / "population.parquet"
    pd.DataFrame(
        {
            "person_id": [1],
            "state": ["VT"],
            "weight": [1.0],
            "age": [40],
            "sex": ["Female"],
            "race": ["White"],
        }
    ).to_parquet(population)
    entry = Path(sys.executable).parent / "personasim"
    done = subprocess.run(
        [
            str(entry),
            "simulate",
            "--population",
            str(population),
            "--survey",
            "elections",
            "--out",
            str(tmp_path / "out"),
            "--executor",
            "ray",
            "--ray-address",
            "ray://127.0.0.1:1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "RAY_CLIENT_INITIAL_CONNECTION_TIMEOUT_S": "1",
            "RAY_CLIENT_MAX_CONNECTION_TIMEOUT_S": "2",
        },
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "no Ray cluster answers at 'ray://127.0.0.1:1'" in lines[0]
    assert "Traceback" not in done.stderr


def test_a_stale_stage_loses_its_parts_with_its_table(tmp_path: Path) -> None:
    from personasim.pipeline import contract as S
    from personasim.pipeline.executor import parts_folder
    from personasim.spec.study import builtin_study

    table = tmp_path / "responses_x.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(table)
    P.commit_part(pd.DataFrame({"a": [1]}), parts_folder(tmp_path, table.name))
    stage = S.Stage(
        "simulate", lambda s: [], lambda s: [table.name], ("a",), lambda s: {}, lambda ctx: None
    )
    S.remove_outputs(stage, builtin_study("tiny"), tmp_path)
    assert not table.exists() and not parts_folder(tmp_path, table.name).exists()


class _RecordingBar:
    """Records the increments a stage's progress bar receives (the bar's own drawing is tqdm's)."""

    def __init__(self) -> None:
        self.updates: list[int] = []

    def __enter__(self) -> _RecordingBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        self.updates.append(n)


def test_local_bar_moves_per_answer_with_fewer_personas_than_a_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3 personas in one batch of 32: the bar must not sit at 0 until the batch is committed."""
    from personasim.pipeline import jobs as stages

    bar = _RecordingBar()
    monkeypatch.setattr(stages, "_bar", lambda *args, **kwargs: bar)
    stand_in = ScriptedStandIn(choice_script=_lean_left)
    stand_in.batch_size = 1  # one request per model call, so progress can move per answer
    personas = meta_personas(POPULATION).iloc[:3]
    run = simulate_to_parts(
        personas,
        builtin_survey("elections"),
        tmp_path,
        backend=stand_in,
        executor=ExecutorSpec(batch_persons=32),
    )
    assert run.report.parts == 1 and run.report.rows == 9
    assert bar.updates == [1] * 9


class FlakyRayStandIn:
    """A stand-in for the `ray` module, named as such: its first `init` fails the way a real
    raylet does when it misses Ray's startup deadline (which real Ray does only by chance)."""

    def __init__(self, message: str) -> None:
        self.message, self.inits, self.shutdowns = message, 0, 0

    def init(self, **kwargs: object) -> None:
        self.inits += 1
        if self.inits == 1:
            raise Exception(self.message)  # Ray's own type for this failure

    def shutdown(self) -> None:
        self.shutdowns += 1


def test_a_local_ray_that_times_out_at_startup_is_started_once_more(monkeypatch) -> None:
    from personasim.executor import ray as R

    monkeypatch.setattr(R.time, "sleep", lambda seconds: None)
    for message in (
        "The current node timed out during startup. This could happen ...",
        "Timed out waiting for file /tmp/psim-ray-x/session_1/gcs_server_port_ab",
    ):
        flaky = FlakyRayStandIn(message)  # the raylet, then the GCS server, missing its deadline
        temp = R._start_local(flaky, ExecutorSpec(kind="ray"))
        assert flaky.inits == 2 and flaky.shutdowns == 1 and os.path.isdir(temp)
        os.rmdir(temp)
    other = FlakyRayStandIn("some other failure")
    with pytest.raises(Exception, match="some other failure"):
        R._start_local(other, ExecutorSpec(kind="ray"))
    assert other.inits == 1


def _published(folder: Path, table: Path) -> pd.DataFrame:
    """The published table, and the same rows read part by part, must agree."""
    assert P.publish(folder, table)
    got = pd.read_parquet(table)
    pd.testing.assert_frame_equal(got.astype(str), P.read_parts(folder)[got.columns].astype(str))
    return got


def test_publish_unifies_part_schemas_streams_and_skips_when_unchanged(tmp_path: Path) -> None:
    folder, table = tmp_path / "parts", tmp_path / "table.parquet"
    assert not P.publish(folder, table) and not table.exists()  # no parts: nothing to publish
    P.commit_part(
        pd.DataFrame({"k": [1, 2], "note": [None, None], "probs": [[0.5, 0.5], None]}), folder
    )
    P.commit_part(
        pd.DataFrame({"k": [3], "note": ["late"], "probs": [[0.1, 0.9]], "extra": [2.5]}), folder
    )
    P.commit_part(pd.DataFrame({"k": [4.5], "note": ["x"], "probs": [[1.0]]}), folder)
    import pyarrow.parquet as pq

    assert str(pq.read_schema(P.part_paths(folder)[0]).field("note").type) == "null"
    got = _published(folder, table)
    assert got["k"].tolist() == [1.0, 2.0, 3.0, 4.5]  # int64 and double: double
    assert got["note"].tolist()[2:] == ["late", "x"] and got["note"].isna().sum() == 2
    assert got["extra"].isna().tolist() == [True, True, False, True]
    assert [list(p) if p is not None else None for p in got["probs"]] == [
        [0.5, 0.5],
        None,
        [0.1, 0.9],
        [1.0],
    ]
    assert pq.ParquetFile(table).metadata.num_row_groups == 1  # small parts: one row group
    first = table.read_bytes()
    stamp = table.stat().st_mtime_ns
    assert not P.publish(folder, table) and table.stat().st_mtime_ns == stamp  # unchanged: kept
    table.write_bytes(first[:50])  # a damaged table is written again, to the same bytes
    assert P.publish(folder, table) and table.read_bytes() == first
    (folder / P.PUBLISHED).unlink()  # no record, table newer than the parts: kept
    assert not P.publish(folder, table) and (folder / P.PUBLISHED).exists()
    P.commit_part(pd.DataFrame({"k": [5]}), folder)
    assert P.publish(folder, table) and len(pd.read_parquet(table)) == 5
    assert [p.name for p in tmp_path.rglob("*.tmp")] == []


def test_publish_writes_row_groups_of_bounded_size(tmp_path: Path, monkeypatch) -> None:
    import pyarrow.parquet as pq

    from personasim.core import tables

    monkeypatch.setattr(tables, "ROW_GROUP_ROWS", 3)
    for rows in (2, 2, 1, 4, 1):
        P.commit_part(pd.DataFrame({"k": range(rows)}), tmp_path / "parts")
    assert P.publish(tmp_path / "parts", tmp_path / "table.parquet")
    meta = pq.ParquetFile(tmp_path / "table.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [4, 5, 1]
    assert pd.read_parquet(tmp_path / "table.parquet")["k"].tolist() == [
        0,
        1,
        0,
        1,
        0,
        0,
        1,
        2,
        3,
        0,
    ]


def test_clashing_part_types_are_one_line(tmp_path: Path) -> None:
    from personasim.core.errors import DataError

    P.commit_part(pd.DataFrame({"k": [1]}), tmp_path / "parts")
    P.commit_part(pd.DataFrame({"k": [[1, 2]]}), tmp_path / "parts")
    with pytest.raises(DataError, match=r"part-00001\.parquet: column 'k' is list.* but int64"):
        P.publish(tmp_path / "parts", tmp_path / "table.parquet")
    assert not (tmp_path / "table.parquet").exists()
    assert [p.name for p in tmp_path.rglob("*.tmp")] == []


def _study_personas(tmp_path: Path, backend: ScriptedStandIn, max_runs: int) -> pd.DataFrame:
    """The study's personas stage (local executor, a scripted backend) on two persons."""
    from types import SimpleNamespace

    from personasim.census import sample_population
    from personasim.pipeline.executor import personas_on_executor
    from personasim.spec.study import study_from_dict

    spec = study_from_dict(
        {
            "name": "retry",
            "population": {"states": ["VT"], "per_state": 2},
            "personas": {
                "tiers": ["meta", "descriptive"],
                "generators": ["scripted"],
                "max_runs": max_runs,
            },
            "simulate": {"simulators": ["scripted"]},
            "backends": {"scripted": {"spec": "llamacpp"}},
            "surveys": [{"id": "votes", "source": "elections"}],
        }
    )
    backends = SimpleNamespace(
        get=lambda name: backend, spec=spec, remote=[0, 0], cache_path=tmp_path / "cache.sqlite"
    )
    population = sample_population(states=["VT"], per_state=2, seed=1)
    personas_on_executor(spec, tmp_path, population, backends, seed=0, max_runs=max_runs)
    table = pd.read_parquet(tmp_path / "personas.parquet")
    assert not table.duplicated(["person_id", "tier", "generator"]).any()
    return table[table["tier"] == "descriptive"]


def test_a_study_tries_backend_failures_again_in_later_runs_up_to_max_runs(
    tmp_path: Path,
) -> None:
    from tests.support.scripted import backend_failure

    state = {"fail": True}
    text = '{"description": "Lives near Burlington and likes long walks."}'
    backend = ScriptedStandIn(lambda request, seen: backend_failure() if state["fail"] else text)
    first = _study_personas(tmp_path / "a", backend, max_runs=3)
    assert set(first["finish_reason"]) == {"error"} and list(first["runs"]) == [1, 1]
    assert len(backend.calls) == 2
    second = _study_personas(tmp_path / "a", backend, max_runs=3)  # one try per run
    assert list(second["runs"]) == [2, 2] and len(backend.calls) == 4
    state["fail"] = False
    third = _study_personas(tmp_path / "a", backend, max_runs=3)
    assert third["valid"].all() and list(third["runs"]) == [3, 3] and len(backend.calls) == 6
    assert len(pd.read_parquet(tmp_path / "a" / "personas.parquet")) == 4  # failed rows replaced
    _study_personas(tmp_path / "a", backend, max_runs=3)
    assert len(backend.calls) == 6  # valid now: done
    state["fail"] = True
    bounded = _study_personas(tmp_path / "b", backend, max_runs=1)
    assert list(bounded["runs"]) == [1, 1] and len(backend.calls) == 8
    _study_personas(tmp_path / "b", backend, max_runs=1)
    assert len(backend.calls) == 8  # runs == max_runs: kept invalid and done


def test_made_with_record_refuses_other_options_and_grows_by_new_questions(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "responses"
    P.check_made_with(folder, {"permute": False, "question": {"a": "1"}}, "hint")
    P.commit_part(pd.DataFrame({"person_id": [1]}), folder)
    # the same options, and a question that is new to the folder: accepted and recorded
    P.check_made_with(folder, {"permute": False, "question": {"a": "1", "b": "2"}}, "hint")
    with pytest.raises(ConfigError, match=r"permute=false, this run has permute=true"):
        P.check_made_with(folder, {"permute": True, "question": {"a": "1"}}, "hint")
    with pytest.raises(ConfigError, match=r"another question 'b'"):
        P.check_made_with(folder, {"permute": False, "question": {"b": "changed"}}, "hint")


def test_made_with_record_of_a_folder_without_parts_is_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "responses"
    P.check_made_with(folder, {"seed": 1}, "hint")
    P.check_made_with(folder, {"seed": 2}, "hint")  # nothing computed under seed 1
    P.commit_part(pd.DataFrame({"person_id": [1]}), folder)
    with pytest.raises(ConfigError, match="seed=2, this run has seed=1"):
        P.check_made_with(folder, {"seed": 1}, "hint")
