"""Scoring streams its input: a folder of parts, read one batch at a time, scores exactly like the
same rows in memory, whatever the parts' schemas; its points do not depend on the rows' order
(its intervals still do: an xfail that turns into a failure once resampling is order-free); bad
folders give one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personasim.core.errors import DataError
from personasim.core.parts import commit_part
from personasim.core.tables import parquet_files
from personasim.scoring import metrics as M
from personasim.scoring import stream as score_input
from personasim.scoring.score import score
from personasim.truth import load_truth

STATES = ["CA", "TX", "VT", "OH", "FL"]
YEARS = ("president_2016", "president_2020", "president_2024")


def _responses(persons: int = 300, seed: int = 0) -> pd.DataFrame:
    """Three election questions for ``persons`` persons in two tiers, with every kind of row
    scoring must exclude, and a question the truth does not know."""
    rng = np.random.default_rng(seed)
    rows = []
    for tier in ("meta", "descriptive"):
        for i in range(persons):
            for qid in (*YEARS, "not_a_question"):
                dem = float(rng.uniform())
                rows.append(
                    {
                        "person_id": f"p{i}",
                        "tier": tier,
                        "generator": "g",
                        "simulator": "s",
                        "question_id": qid,
                        "estimator": "logprobs",
                        "probs": [dem, 1 - dem],
                        "answer": None,
                        "valid_mass": 0.9,
                        "valid": True,
                        "state": STATES[i % len(STATES)],
                        "weight": float(1 + i % 3),
                    }
                )
    frame = pd.DataFrame(rows)
    frame.loc[::11, "valid"] = False
    frame.loc[1::13, "valid_mass"] = 0.0
    frame.loc[2::7, "probs"] = None  # scored from the sampled answer instead
    frame.loc[2::7, "answer"] = np.where(np.arange(len(frame))[2::7] % 2, "A", "B")
    return frame


def _same(a, b) -> None:  # noqa: ANN001 - two ScoreResults
    pd.testing.assert_frame_equal(a.scores, b.scores)
    pd.testing.assert_frame_equal(a.summary, b.summary)
    assert a.notes == b.notes


def test_parts_folder_scores_like_the_table_in_memory(tmp_path: Path) -> None:
    frame = _responses()
    truth = load_truth("elections")
    # parts of uneven sizes; the first has no answer at all (a null column) and no `valid`
    # column (as an older version wrote it): the batches carry different schemas
    first = frame.iloc[:500].assign(answer=None)
    commit_part(first.drop(columns="valid"), tmp_path)
    for start in range(500, len(frame), 1700):
        commit_part(frame.iloc[start : start + 1700], tmp_path)
    from_parts = score(tmp_path, truth, n_boot=30)
    # the same rows in memory: in a folder whose other parts record `valid`, the first part's
    # rows have no recorded decision, which the one validity rule (core.validity) excludes
    same_rows = pd.concat([first.assign(valid=None), frame.iloc[500:]], ignore_index=True)
    _same(from_parts, score(same_rows, truth, n_boot=30))
    assert from_parts.scores["value"].notna().all()
    assert from_parts.scores["summary_ci_low"].notna().any()
    assert any("question(s) without truth skipped" in note for note in from_parts.notes)
    assert any("excluded: invalid" in note for note in from_parts.notes)


#: Interval columns: persons are drawn in their canonical (hashed key) order, not by position.
CI_COLUMNS = [
    "corrected",
    "ci_low",
    "ci_high",
    "p_equal",
    "detectable",
    "summary_ci_low",
    "summary_ci_high",
    "summary_corrected",
    "summary_p_equal",
    "summary_detectable",
]


def _shuffled_parts(frame: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """``frame``'s rows in a random order, committed as parts in reverse order of slices;
    returns the rows in the order the parts hold them."""
    shuffled = frame.sample(frac=1, random_state=4).reset_index(drop=True)
    slices = [shuffled.iloc[start : start + 900] for start in range(0, len(shuffled), 900)]
    for part in reversed(slices):
        commit_part(part, folder)
    return pd.concat(reversed(slices), ignore_index=True)


def test_row_and_part_order_change_no_score(tmp_path: Path) -> None:
    frame = _responses(persons=60, seed=5)
    truth = load_truth("elections")
    stored = _shuffled_parts(frame, tmp_path)
    assert not stored["person_id"].equals(frame["person_id"])  # the order really changed
    first, permuted = score(frame, truth, n_boot=30), score(tmp_path, truth, n_boot=30)
    pd.testing.assert_frame_equal(
        first.scores.drop(columns=CI_COLUMNS),
        permuted.scores.drop(columns=CI_COLUMNS),
        check_exact=False,
        rtol=1e-12,
    )
    assert first.notes == permuted.notes
    assert first.scores["value"].notna().all() and (first.scores["n"] > 1).any()


def test_row_and_part_order_change_no_interval(tmp_path: Path) -> None:
    frame = _responses(persons=60, seed=5)
    truth = load_truth("elections")
    _shuffled_parts(frame, tmp_path)
    first, permuted = score(frame, truth, n_boot=30), score(tmp_path, truth, n_boot=30)
    assert first.scores[CI_COLUMNS].notna().any().all()  # every interval column is computed
    pd.testing.assert_frame_equal(
        first.scores[CI_COLUMNS], permuted.scores[CI_COLUMNS], check_exact=True
    )


def test_ray_style_part_splits_give_identical_scores(tmp_path: Path) -> None:
    # each worker writes its own shard of persons as parts; the shards finish in any order
    frame = _responses(persons=60, seed=6)
    truth = load_truth("elections")
    shard = frame["person_id"].str[1:].astype(int) % 3
    for worker in (2, 0, 1):
        rows = frame[shard == worker]
        for start in range(0, len(rows), 250):
            commit_part(rows.iloc[start : start + 250], tmp_path / "ray")
    commit_part(frame, tmp_path / "local")
    local, ray = (
        score(tmp_path / "local", truth, n_boot=30),
        score(tmp_path / "ray", truth, n_boot=30),
    )
    pd.testing.assert_frame_equal(local.scores, ray.scores, check_exact=True)
    pd.testing.assert_frame_equal(local.summary, ray.summary, check_exact=True)


def test_small_batches_change_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _responses(persons=120, seed=3)
    commit_part(frame, tmp_path)
    truth = load_truth("elections")
    whole = score(tmp_path, truth, n_boot=25)
    monkeypatch.setattr(score_input, "BATCH_ROWS", 37)  # cells split across many batches
    _same(whole, score(tmp_path, truth, n_boot=25))
    _same(whole, score(frame, truth, n_boot=25))


def test_parts_are_read_in_commit_order(tmp_path: Path) -> None:
    for number in (100000, 2, 99999):
        (tmp_path / f"part-{number:05d}.parquet").write_bytes(b"")
    (tmp_path / "_failed.parquet").write_bytes(b"")
    (tmp_path / ".part-00003.parquet.1.tmp").write_bytes(b"")
    names = [p.name for p in parquet_files(tmp_path)]
    assert names == ["part-00002.parquet", "part-99999.parquet", "part-100000.parquet"]


def test_bad_response_folders_give_one_line(tmp_path: Path) -> None:
    truth = load_truth("elections")
    with pytest.raises(DataError, match="file not found"):
        score(tmp_path / "missing", truth)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no Parquet file"):
        score(tmp_path / "empty", truth)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "part-00000.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="part-00000.parquet: cannot read responses table"):
        score(junk, truth)
    lacking = tmp_path / "lacking"
    commit_part(_responses(persons=5), lacking)
    commit_part(_responses(persons=5).drop(columns="probs"), lacking)
    with pytest.raises(DataError, match=r"part-00001.parquet: not a responses table \(no 'probs'"):
        score(lacking, truth)


def test_bootstrap_draws_do_not_depend_on_the_chunk_size() -> None:
    for n in (7, 1000):
        full = np.vstack(list(M.resample_counts(n, 40, np.random.default_rng(5), chunk=32)))
        for chunk in (1, 3, 40):
            parts = M.resample_counts(n, 40, np.random.default_rng(5), chunk=chunk)
            assert np.array_equal(full, np.vstack(list(parts)))
    assert M.boot_chunk(10) == 32 and M.boot_chunk(10**7) == 1
    assert M.boot_chunk(M.COUNTS_BUDGET // 4) == 4


def test_calibrated_weights_streamed_equal_weights_joined_first(tmp_path: Path) -> None:
    from personasim.calibrate import attach_weights

    frame = _responses(persons=60, seed=4).drop(columns="weight")
    commit_part(frame, tmp_path)
    persons = pd.DataFrame(
        {"person_id": [f"p{i}" for i in range(60)], "weight": [1.0 + i % 4 for i in range(60)]}
    )
    # calibrated weights for one tier only, ids given as numbers-as-text and a duplicate row
    weights = pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(0, 60, 2)] + ["p0"],
            "tier": "descriptive",
            "generator": "g",
            "weight": [0.5 + i / 10 for i in range(31)],
        }
    )
    truth = load_truth("elections")
    known = frame[frame["question_id"] != "not_a_question"]  # only scored rows are counted
    joined, notes = attach_weights(known, weights, persons)
    expected = score(joined, truth, persons, n_boot=20)
    streamed = score(tmp_path, truth, persons, n_boot=20, weights=weights)
    pd.testing.assert_frame_equal(expected.scores, streamed.scores)
    assert notes[0] in streamed.notes  # the rows left at their base weight are counted alike
    plain = score(tmp_path, truth, persons, n_boot=20)
    assert not plain.scores["value"].equals(streamed.scores["value"])
