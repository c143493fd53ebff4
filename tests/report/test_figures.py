"""The report's interval pictures: cross-tab dot-and-interval plots and the cross-model heatmap,
checked through the data handed to matplotlib (not pixels), and only for declared tables."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personasim.report import figures as F
from personasim.report.build import cross_model_section, crosstab_section, load_run
from personasim.scoring.crosstab import CROSSTAB_COLUMNS, TRUTH_SHARE_COLUMNS
from personasim.spec.study import builtin_study

PNG = b"\x89PNG\r\n\x1a\n"


def _png(data: str) -> bytes:
    """The bytes of a ``data:image/png;base64,`` URI."""
    prefix = "data:image/png;base64,"
    assert data.startswith(prefix)
    return base64.b64decode(data[len(prefix) :])


def _cells() -> pd.DataFrame:
    """One question's cells: two tiers, groups by sex (one cell of a single person) and state
    (the real share beside it)."""
    rows = [
        # attribute, group, tier, share, low, high, n, truth
        ("sex", "Female", "meta", 0.55, 0.45, 0.65, 40, np.nan),
        ("sex", "Female", "descriptive", 0.70, 0.60, 0.80, 40, np.nan),
        ("sex", "Male", "meta", 0.40, 0.40, 0.40, 1, np.nan),  # one person: no interval
        ("sex", "Male", "descriptive", 0.62, np.nan, np.nan, 12, np.nan),  # no CI
        ("state", "VT", "meta", 0.66, 0.50, 0.80, 20, 0.70),
        ("state", "VT", "descriptive", 0.75, 0.62, 0.88, 20, 0.70),
    ]
    frame = pd.DataFrame(
        rows,
        columns=["attribute", "group", "tier", "share", "ci_low", "ci_high", "n", "truth_share"],
    )
    return frame.assign(model=frame["tier"], small=frame["n"] < 30)


def test_a_single_person_or_missing_interval_gets_a_bare_dot() -> None:
    cells = _cells()
    points = F.interval_points(cells[cells["attribute"] == "sex"], ["meta", "descriptive"])
    by = points.set_index(["group", "model"])
    assert not by.loc[("Male", "meta"), "bar"] and np.isnan(by.loc[("Male", "meta"), "ci_low"])
    assert not by.loc[("Male", "descriptive"), "bar"]
    assert by.loc[("Female", "meta"), "bar"] and by.loc[("Female", "meta"), "ci_high"] == 0.65
    # groups top to bottom in sorted order, the models of a group within its row
    assert by.loc[("Female", "meta"), "y"] > by.loc[("Male", "meta"), "y"]
    assert abs(by.loc[("Female", "meta"), "y"] - by.loc[("Female", "descriptive"), "y"]) < 1
    assert by.loc[("Female", "meta"), "small"] == False  # noqa: E712 (numpy bool)
    assert by.loc[("Male", "descriptive"), "small"] == True  # noqa: E712


def test_crosstab_figure_draws_bars_only_where_there_is_an_interval(monkeypatch) -> None:
    import matplotlib.axes

    drawn: list[tuple[list[float], list[float]]] = []
    real: list[list[float]] = []
    errorbar, scatter = matplotlib.axes.Axes.errorbar, matplotlib.axes.Axes.scatter

    def spy_errorbar(self, x, y, *args, **kwargs):
        drawn.append(([float(v) for v in x], [float(v) for v in kwargs["xerr"][0]]))
        return errorbar(self, x, y, *args, **kwargs)

    def spy_scatter(self, x, y, *args, **kwargs):
        if kwargs.get("marker") == "D":
            real.append([float(v) for v in x])
        return scatter(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", spy_errorbar)
    monkeypatch.setattr(matplotlib.axes.Axes, "scatter", spy_scatter)
    image = F.crosstab_figure(_cells(), "votes, president_2020", "Democratic share")
    assert _png(image).startswith(PNG)
    bars = sorted(x for xs, _ in drawn for x in xs)
    # four cells with an interval; the one-person cell (0.40) and the CI-less one (0.62) have none
    assert bars == [0.55, 0.66, 0.70, 0.75]
    lows = sorted(x for _, xs in drawn for x in xs)  # share - ci_low, as errorbar got it
    assert lows == pytest.approx([0.10, 0.10, 0.13, 0.16])
    # the real share only in the state panel, where the table has it
    assert [v for v in real if not all(np.isnan(v))] == [[0.70]]


def test_the_real_share_gets_its_own_slot_and_interval_bar() -> None:
    cells = _cells()
    state = cells[cells["attribute"] == "state"].assign(truth_ci_low=0.61, truth_ci_high=0.78)
    real = F.real_points(state, ["meta", "descriptive"])
    [row] = real.itertuples(index=False)
    assert (row.group, row.x, row.ci_low, row.ci_high, row.bar) == ("VT", 0.70, 0.61, 0.78, True)
    # below both models in the group's row, within it
    dots = F.interval_points(state, ["meta", "descriptive", F.REAL]).set_index("model")["y"]
    assert row.y < dots.min() and abs(row.y - dots.max()) < 1
    # without an interval (an exact truth) the diamond stays, bare
    bare = F.real_points(cells[cells["attribute"] == "state"], ["meta", "descriptive"])
    assert not bare["bar"].any() and bare["x"].tolist() == [0.70]
    # no real share in the panel: nothing to draw
    assert F.real_points(cells[cells["attribute"] == "sex"], ["meta"]).empty


def test_alignment_by_group_figure_sorts_groups_best_first() -> None:
    rows = pd.DataFrame(
        {
            "attribute": ["overall", "AGE", "AGE", "education"] * 2,
            "group": ["all", "18-29", "65+", "HS Graduate"] * 2,
            "model": ["meta"] * 4 + ["descriptive"] * 4,
            "value": [0.8, 0.9, 0.6, 0.7, 0.8, 0.7, 0.62, 0.9],
            # descriptive 65+: 0.62 outside its interval (a test inversion's may not hold it)
            "ci_low": [0.7, 0.8, 0.5, np.nan, 0.7, 0.6, 0.64, 0.8],
            "ci_high": [0.9, 0.95, 0.7, np.nan, 0.9, 0.8, 0.75, 0.95],
            "uniform": 0.5,
            "n": 10,
            "truth_n_eff": [900.0, 150.0, 120.0, 300.0] * 2,
        }
    )
    # means over tiers: 18-29 0.80, HS Graduate 0.80 (ties by name), 65+ 0.61; overall left out
    assert F.group_order(rows) == [("AGE", "18-29"), ("education", "HS Graduate"), ("AGE", "65+")]
    import matplotlib.axes

    bars: list[tuple[float, float]] = []
    errorbar = matplotlib.axes.Axes.errorbar

    def spy(self, x, y, *args, **kwargs):
        bars.extend((float(c - e), float(c + e)) for c, e in zip(x, kwargs["xerr"], strict=True))
        return errorbar(self, x, y, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(matplotlib.axes.Axes, "errorbar", spy)
        assert _png(F.group_alignment_figure(rows, "anes96")).startswith(PNG)
    # each bar spans its interval exactly; no bar for the group without one
    expected = sorted([(0.8, 0.95), (0.5, 0.7), (0.6, 0.8), (0.64, 0.75), (0.8, 0.95)])
    assert np.ravel(sorted(bars)) == pytest.approx(np.ravel(expected))
    # census-derived codes read as words; the persons' own columns keep their names
    labels = [F._group_label(rows, key) for key in F.group_order(rows)]
    assert labels == [
        "age: 18-29 (n=10, 150 resp.)",
        "education: HS Graduate (n=10, 300 resp.)",
        "age: 65+ (n=10, 120 resp.)",
    ]
    assert (
        F.attribute_caption("INCOME_BAND") == "income" and F.attribute_caption("state") == "state"
    )


def _cross_model() -> pd.DataFrame:
    rows = [
        ("meta", "census", "llamacpp:small", 0.71, 0.66, 0.76),
        ("meta", "census", "openai:big", 0.80, 0.77, 0.83),
        ("descriptive", "openai:big", "llamacpp:small", 0.64, np.nan, np.nan),
        ("descriptive", "openai:big", "openai:big", 0.78, 0.74, 0.82),
        ("descriptive", "llamacpp:small", "openai:big", 0.75, 0.70, 0.80),
    ]
    frame = pd.DataFrame(
        rows, columns=["tier", "generator", "simulator", "value", "ci_low", "ci_high"]
    )
    return frame.assign(estimator="logprobs", excluded_share=0.0)


def test_heatmap_cells_carry_value_and_interval_and_leave_missing_pairs_empty() -> None:
    cross = _cross_model()
    generators, simulators, values, texts = F.heatmap_cells(cross[cross["tier"] == "descriptive"])
    assert generators == ["llamacpp:small", "openai:big"]
    assert simulators == ["llamacpp:small", "openai:big"]
    assert np.isnan(values[0, 0]) and texts[0][0] == ""  # llamacpp -> llamacpp not run
    assert texts[1][1] == "0.780\n[0.740, 0.820]"
    assert texts[1][0] == "0.640"  # no interval, no bracket line
    assert _png(F.cross_model_figure(cross, "votes")).startswith(PNG)


def _run_dir(tmp_path: Path, declared: list[str], columns: list[str] = CROSSTAB_COLUMNS) -> Path:
    """A finished-looking run directory of the tiny study, model-free: its spec, a personas
    table, a cross-tab and a cross-model table on disk, and a ledger declaring ``declared``."""
    run = tmp_path / "run"
    run.mkdir(parents=True)
    (run / "study.toml").write_text(builtin_study("tiny").to_toml(), "utf-8")
    pd.DataFrame(
        {
            "person_id": [0],
            "tier": ["meta"],
            "generator": ["census"],
            "valid": [True],
            "text": ["x"],
        }
    ).to_parquet(run / "personas.parquet")
    cells = _cells().assign(truth_ci_low=np.nan, truth_ci_high=np.nan, truth_n_eff=np.nan)
    survey = builtin_study("tiny").survey("elections").load()
    question = survey.questions[0]
    cross = cells.assign(
        question_id=question.id,
        generator="census",
        simulator="embedded",
        estimator="logprobs",
        option=question.options[question.index_of("dem")].text,
        weight_sum=1.0,
    )
    cross[columns].to_parquet(run / "crosstab_elections.parquet")
    _cross_model().to_parquet(run / "cross_model_elections.parquet")
    ledger = {"score": {"outputs": declared}}
    (run / "stages.json").write_text(json.dumps(ledger), "utf-8")
    return run


def test_only_declared_tables_become_figures(tmp_path: Path) -> None:
    run = _run_dir(
        tmp_path,
        ["personas.parquet", "crosstab_elections.parquet", "cross_model_elections.parquet"],
    )
    data = load_run(run)
    section = crosstab_section(data)
    assert section is not None
    [survey] = section["surveys"]
    assert survey["survey"] == "elections" and len(survey["figures"]) == 1
    assert _png(survey["figures"][0]["image"]).startswith(PNG)
    [heatmap] = cross_model_section(data)
    assert heatmap["survey"] == "elections" and _png(heatmap["image"]).startswith(PNG)
    # the same files on disk, no longer declared by the study: no figure at all
    quiet = load_run(_run_dir(tmp_path / "again", ["personas.parquet"]))
    assert crosstab_section(quiet) is None and cross_model_section(quiet) == []


def test_a_crosstab_written_before_the_real_shares_is_drawn_without_them(tmp_path: Path) -> None:
    old = [c for c in CROSSTAB_COLUMNS if c not in TRUTH_SHARE_COLUMNS]
    section = crosstab_section(load_run(_run_dir(tmp_path, ["crosstab_elections.parquet"], old)))
    assert section is not None
    [survey] = section["surveys"]
    assert _png(survey["figures"][0]["image"]).startswith(PNG)
    assert all("actual" not in t["table"]["columns"] for t in survey["tables"])


def test_a_survey_without_elections_draws_its_most_common_real_answer() -> None:
    from personasim.report.build import _focus_rows

    frame = pd.DataFrame(
        {
            "question_id": ["q1"] * 4 + ["q2"] * 2,
            "option": ["Agree", "Disagree", "Agree", "Disagree", "Yes", "No"],
            "share": [0.9, 0.1, 0.8, 0.2, 0.3, 0.7],
            "truth_share": [0.3, 0.7, 0.2, 0.8, np.nan, np.nan],
        }
    )
    picked = _focus_rows(frame, None)
    # q1: real respondents mostly disagree (whatever the simulation says); q2 has no truth
    assert picked.groupby("question_id")["option"].unique().map(list).to_dict() == {
        "q1": ["Disagree"],
        "q2": ["No"],
    }
