"""``personasim run --executor ray`` on the shipped default study gives the same personas,
responses, scores, summaries, calibrated tables, manifest and report text as the local run (real
local Ray cluster; the embedded model answers the local run, whose LLM cache the Ray run starts
from, so its actors build and look up every request and must find each one: a request built
differently on an actor is a model call and fails the test).

The default study (``src/personasim/studies/default.toml``, loaded as ``personasim run`` loads
it) is scaled down only where the test's time budget needs it: ``[population] states = ["CA"]``
with ``per_state = 2`` (2 persons, so every interval is a real one, instead of 5 states x 3), the
``meta`` and ``subjective`` tiers (the calibrated one; instead of all four, so ``drift``, which
is of the objective tier, is empty) and ``max_questions = 1`` on each survey. Everything else
is the default's: both surveys, the logprobs estimator, ``[calibration]`` and ``[score]`` (1000
bootstrap draws)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("ray", reason="the ray extra is not installed (make test installs it)")

from personasim.core.keys import MODEL_KEY, PERSONA_KEY, RESPONSE_KEY, SCORE_KEY  # noqa: E402
from personasim.report.reading import EMBEDDED_CAVEAT  # noqa: E402

pytestmark = pytest.mark.slow

KEYS = {
    "personas": list(PERSONA_KEY),
    "responses": list(RESPONSE_KEY),
    "scores": list(SCORE_KEY),
    "summary": [*MODEL_KEY, "metric"],
    "cross_model": ["index", *MODEL_KEY],
    "crosstab": ["question_id", *MODEL_KEY, "attribute", "group", "option"],
    "weights": list(PERSONA_KEY),
    "calibration": ["tier", "generator", "state", "variable"],
    "text_stats": list(PERSONA_KEY),
    "drift": ["tier", "generator", "attribute"],
    "population": ["person_id"],
    "raking": ["state", "control"],
}
"""Sort keys of each run-directory table, by the table name's prefix."""


def _scaled_default(path: Path, **executor: object) -> Path:
    """The shipped default study, scaled down as the module docstring says, as a TOML file."""
    from personasim.executor.base import ExecutorSpec
    from personasim.spec.study import load_study

    spec = load_study("default")
    assert len(spec.personas.tiers) == 4 and {e.id for e in spec.surveys} == {"elections", "topics"}
    assert spec.calibration is not None
    assert spec.calibration.tiers == ("subjective",)
    population = spec.population.model_copy(update={"states": ("CA",), "per_state": 2})
    personas = spec.personas.model_copy(update={"tiers": ("meta", "subjective")})
    surveys = tuple(e.model_copy(update={"max_questions": 1}) for e in spec.surveys)
    scaled = spec.model_copy(
        update={
            "population": population,
            "personas": personas,
            "surveys": surveys,
            "executor": ExecutorSpec(**executor),
        }
    )
    path.write_text(scaled.to_toml(), encoding="utf-8")
    return path


def _table(path: Path) -> pd.DataFrame:
    """A table in key order without timing columns (``seconds``)."""
    key = next(
        v for k, v in sorted(KEYS.items(), key=lambda kv: -len(kv[0])) if path.stem.startswith(k)
    )
    frame = pd.read_parquet(path)
    frame = frame.drop(columns=[c for c in frame.columns if "seconds" in c])
    return frame.sort_values(key).reset_index(drop=True)


def _manifest(run: Path) -> dict[str, Any]:
    """The run's manifest without what differs between two runs of the same study: timings,
    creation time, the executor, per-backend counters and settings."""
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    study = {k: v for k, v in manifest["study"].items() if k not in {"executor", "out_dir"}}
    return {
        "study": study,
        "seeds": manifest["seeds"],
        "prompt_hashes": manifest["prompt_hashes"],
        "excluded": manifest["excluded"],
        # what each stage depended on, less the tables' byte hashes (Ray and local may write the
        # same rows in another order; the tables themselves are compared row by row)
        "stage_inputs": {
            name: {
                "outputs": entry["outputs"],
                **{k: v for k, v in entry["fingerprint"].items() if k != "inputs"},
            }
            for name, entry in manifest["stage_inputs"].items()
        },
        "stages": [s["stage"] for s in manifest["stages"]],
        "models": {
            name: {k: model[k] for k in ("spec", "display_name", "identity")}
            for name, model in manifest["models"].items()
        },
    }


def _copy_cache(source: Path, target: Path) -> None:
    """A consistent copy of an LLM cache (SQLite's backup: the write-ahead log included)."""
    with sqlite3.connect(source) as old, sqlite3.connect(target) as new:
        old.backup(new)


def _report_text(run: Path) -> str:
    """The report's visible text: tags and embedded images dropped, whitespace collapsed, the
    run's own folder name replaced; the last run's stage timings, its model calls and cache hits
    and the manifest dump left out (seconds and counters differ between any two runs;
    :func:`_manifest` compares the rest)."""
    html = (run / "report.html").read_text(encoding="utf-8")
    html = re.sub(r"<h3>Stages \(last run\)</h3>.*?</details>", " ", html, flags=re.S)
    html = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "IMAGE", html)
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<style.*?</style>", " ", html, flags=re.S))
    text = " ".join(text.replace(str(run), "RUN").split())
    # the Ray run answers from a copy of the local run's cache: calls and hits trade places
    return re.sub(r"model calls / cache hits \(last run\) \d+ / \d+", "CALLS", text)


def test_default_study_on_ray_equals_the_local_run(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from personasim.cli.main import main

    local = _scaled_default(tmp_path / "local.toml")
    ray = _scaled_default(tmp_path / "ray.toml", kind="ray", batch_persons=1)
    assert main(["run", str(local), "--out", str(tmp_path / "local")]) == 0
    capsys.readouterr()
    # the Ray run starts from a copy of the local run's LLM cache: its actors build every
    # request, look it up, commit parts and publish as in any run, and answer from the cache
    # (that actors call the model and count it is pinned in test_ray.py, without a cache)
    (tmp_path / "ray").mkdir()
    _copy_cache(tmp_path / "local" / "cache.sqlite", tmp_path / "ray" / "cache.sqlite")
    assert main(["run", str(ray), "--out", str(tmp_path / "ray")]) == 0
    counted = re.search(r"model calls (\d+), cache hits (\d+)", capsys.readouterr().out)
    assert counted and int(counted.group(2)) > 0, "the Ray actors' cache hits were not counted"
    assert int(counted.group(1)) == 0, "a request of the Ray run differs from the local run's"
    names = sorted(p.name for p in (tmp_path / "local").glob("*.parquet"))
    for must in (
        "personas",
        "responses_elections",
        "responses_topics",
        "scores_elections",
        "summary_elections",
        "scores_elections_calibrated",
        "summary_elections_calibrated",
        "weights",
        "calibration",
    ):
        assert f"{must}.parquet" in names, must
    assert names == sorted(p.name for p in (tmp_path / "ray").glob("*.parquet"))
    for name in names:
        mine, theirs = (_table(tmp_path / run / name) for run in ("local", "ray"))
        # drift compares the objective tier's LLM values with the census: no objective tier here
        assert len(mine) or name == "drift.parquet", name
        pd.testing.assert_frame_equal(mine, theirs, obj=name)
    local_manifest, ray_manifest = (_manifest(tmp_path / run) for run in ("local", "ray"))
    assert local_manifest["stages"][-1] == "report" and local_manifest["models"]
    assert local_manifest == ray_manifest
    population = pd.read_parquet(tmp_path / "local" / "population.parquet")
    assert len(population) == 2
    scores = pd.read_parquet(tmp_path / "local" / "scores_elections.parquet")
    shares = scores[scores["metric"] == "dem_share"]
    assert (shares["n"] == 2).all() and (shares["ci_high"] > shares["ci_low"]).all()
    text = _report_text(tmp_path / "local")
    assert "subjective" in text and len(text) > 500
    assert text == _report_text(tmp_path / "ray")
    for run in ("local", "ray"):  # both executors commit parts and publish from them
        assert list((tmp_path / run / "parts" / "responses_topics").glob("part-*.parquet"))
    # provenance: the actors' models are in the manifest, so the small-model caveat shows
    local_models, ray_models = (
        json.loads((tmp_path / run / "manifest.json").read_text())["models"]
        for run in ("local", "ray")
    )
    assert set(ray_models) == set(local_models) and ray_models
    for name, model in local_models.items():
        for field in ("spec", "display_name", "identity"):
            assert ray_models[name][field] == model[field], (name, field)
        assert ray_models[name]["stats"]["cache_hits"] > 0
    assert EMBEDDED_CAVEAT[:60] in (tmp_path / "ray" / "report.html").read_text()
    # the CLI flag overrides the spec: a rerun on the local executor makes no model call
    assert main(["run", str(ray), "--out", str(tmp_path / "ray"), "--executor", "local"]) == 0
    assert "model calls 0, cache hits" in capsys.readouterr().out
