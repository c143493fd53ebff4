"""Target sources, the party table, and the `calibrate` command (bad input -> one line, exit 2)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from personasim.calibrate import calibrate, load_targets
from personasim.calibrate import targets as T
from personasim.cli.main import main
from tests.calibrate.conftest import fake_personas
from tests.conftest import require_shared_data


def test_party_table_is_rebuilt_identically(tmp_path: Path) -> None:
    shared = require_shared_data()
    script = Path(__file__).resolve().parents[2] / "scripts" / "build_party_table.py"
    spec = importlib.util.spec_from_file_location("build_party_table", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.build(shared, tmp_path)
    assert built.read_bytes() == (T.PARTY_DIR / T.PARTY_FILE).read_bytes()


def test_party_targets_follow_pew() -> None:
    party = load_targets("party")
    al = party[party.group == "AL"].set_index("level")["share"]
    assert al["Republican"] == pytest.approx(0.52) and al["Democrat"] == pytest.approx(0.35)
    national = party[party.group == ""]["share"]
    assert national.sum() == pytest.approx(1.0) and len(national) == 3
    assert set(party.group) - {""} == set(T.load_party_table()["state"])


def test_census_targets_are_shares_of_the_acs_figures() -> None:
    census = load_targets("census")
    sums = census.groupby(["variable", "group"])["share"].sum()
    assert ((sums - 1).abs() < 1e-9).all()
    figures = pd.read_csv(Path(T.__file__).parents[1] / "census" / "data" / "targets.csv")
    vt = dict(figures[figures.state == "VT"][["key", "value"]].values)
    male = census[(census.group == "VT") & (census.variable == "sex") & (census.level == "Male")]
    assert male["share"].iloc[0] == pytest.approx(
        vt["sex18:Male"] / (vt["sex18:Male"] + vt["sex18:Female"])
    )
    assert set(census.variable) >= {"age_band", "race_ethnicity", "education", "marital_status"}


def test_party_calibration_of_a_tier_matches_pew(population: pd.DataFrame) -> None:
    personas = fake_personas(population)
    result = calibrate(personas, load_targets("census,party"), by="state")
    d = result.diagnostics
    party = d[d.variable == "party"]
    assert set(party.tier) == {"subjective"}  # the meta tier has no political views
    assert (party.asmd_before > 0.1).all() and (party.max_abs_error_after < 1e-5).all()
    assert any("tier meta" in n and "party" in n for n in result.notes)
    assert list(result.weights.columns) == ["person_id", "tier", "generator", "weight"]
    assert len(result.weights) == len(personas)


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_writes_weights_and_diagnostics(population, tmp_path: Path, capsys) -> None:
    pool = tmp_path / "personas.parquet"
    fake_personas(population).to_parquet(pool)
    out, diagnostics = tmp_path / "weights.parquet", tmp_path / "diag.parquet"
    code, text, _ = _run(
        [
            "calibrate",
            "--personas",
            str(pool),
            "--targets",
            "census,party",
            "--by",
            "state",
            "--trim",
            "5",
            "--out",
            str(out),
            "--diagnostics",
            str(diagnostics),
        ],
        capsys,
    )
    assert code == 0
    assert "subjective test-model VT" in text and "deff=" in text and "status=" in text
    weights = pd.read_parquet(out)
    assert {"person_id", "tier", "generator", "weight"} == set(weights.columns)
    diag = pd.read_parquet(diagnostics)
    assert {"deff", "ess", "asmd_before", "asmd_after", "status"} <= set(diag.columns)


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("variable,level,share\nsex,Male,0.7\nsex,Female,0.7\n", "add to 1.4"),
        ("variable,level,share\nshoe_size,42,1.0\n", "unknown variable 'shoe_size'"),
        ("variable,level,share\nsex,Male,-0.2\nsex,Female,1.2\n", "negative share"),
        ("variable,level,share\nsex,Male,0.5\nsex,Femal,0.5\n", "no level 'Femal'"),
        ("variable,level,share\nsex,Male,abc\n", "not a number"),
        ("variable,level,fraction\nsex,Male,1\n", "no 'share' column"),
    ],
)
def test_bad_targets_csv_is_one_line_exit_2(
    population, tmp_path: Path, capsys, csv: str, message: str
) -> None:
    pool = tmp_path / "pop.parquet"
    population.to_parquet(pool)
    path = tmp_path / "targets.csv"
    path.write_text(csv)
    code, _, err = _run(
        [
            "calibrate",
            "--personas",
            str(pool),
            "--targets",
            f"csv:{path}",
            "--out",
            str(tmp_path / "w.parquet"),
        ],
        capsys,
    )
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err


def test_csv_targets_are_read_as_csv_whatever_the_file_ending(
    population, tmp_path: Path, capsys
) -> None:
    pool = tmp_path / "pop.parquet"
    population.to_parquet(pool)
    path = tmp_path / "targets.txt"  # `csv:` says the format; the ending must not make it Parquet
    path.write_text("variable,level,share\nsex,Male,0.7\nsex,Female,0.7\n")
    code, _, err = _run(
        [
            "calibrate",
            "--personas",
            str(pool),
            "--targets",
            f"csv:{path}",
            "--out",
            str(tmp_path / "w.parquet"),
        ],
        capsys,
    )
    assert code == 2 and "add to 1.4" in err and "Parquet" not in err, err


def test_user_csv_groups_need_by_and_poststratify_a_cross(population, tmp_path, capsys) -> None:
    pool = tmp_path / "pop.parquet"
    population.to_parquet(pool)
    path = tmp_path / "targets.csv"
    rows = ["variable,level,share,group"]
    for state in ("VT", "NM"):
        rows += [
            f"sex*employment_status,{s} | {e},{1 / 6:.10f},{state}"
            for s in ("Male", "Female")
            for e in ("Employed", "Unemployed", "Not in Labor Force")
        ]
    path.write_text("\n".join(rows) + "\n")
    args = [
        "calibrate",
        "--personas",
        str(pool),
        "--targets",
        f"csv:{path}",
        "--method",
        "poststratify",
        "--out",
        str(tmp_path / "w.parquet"),
    ]
    code, _, err = _run(args, capsys)
    assert code == 2 and "--by state" in err
    diagnostics = tmp_path / "d.parquet"
    code, text, _ = _run([*args, "--by", "state", "--diagnostics", str(diagnostics)], capsys)
    assert code == 0 and text.count("status=converged") == 2
    diag = pd.read_parquet(diagnostics)
    assert diag["max_abs_error_after"].max() < 1e-9


def test_party_on_a_pool_without_political_views_is_one_line(population, tmp_path, capsys):
    pool = tmp_path / "pop.parquet"
    population.to_parquet(pool)
    code, _, err = _run(
        [
            "calibrate",
            "--personas",
            str(pool),
            "--targets",
            "party",
            "--out",
            str(tmp_path / "w.parquet"),
        ],
        capsys,
    )
    assert code == 2 and "political_views" in err and len(err.strip().splitlines()) == 1


def test_unknown_source_and_duplicate_variable() -> None:
    from personasim.core.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown target source 'cenus'"):
        load_targets("cenus")
    with pytest.raises(ConfigError, match="given by both"):
        load_targets("census,census")


def test_census_variables_a_bare_table_lacks_are_skipped_with_a_note(population) -> None:
    bare = population[["person_id", "state", "age", "sex"]]
    result = calibrate(bare, load_targets("census"), by="state")
    assert set(result.diagnostics["variable"]) == {"sex", "age_band"}
    assert any("education" in n and "skipped" in n for n in result.notes)


def test_csv_targets_name_the_levels_none_and_na(population, tmp_path: Path) -> None:
    # `None` is the documented uninsured level; `NA` must stay a level too, not a missing value
    path = tmp_path / "targets.csv"
    path.write_text(
        "variable,level,share\nhealth_insurance,Private,0.5\n"
        "health_insurance,Public,0.3\nhealth_insurance,None,0.2\n"
        "other,NA,0.4\nother,Yes,0.6\n"
    )
    targets = T.csv_targets(path)
    assert set(targets["level"]) == {"Private", "Public", "None", "NA", "Yes"}
    result = calibrate(population, targets[targets["variable"] == "health_insurance"])
    row = result.diagnostics.iloc[0]
    assert row["status"] == "converged" and row["max_abs_error_after"] < 1e-3
    uninsured = T.variable_values(population, "health_insurance") == "None"
    weights = result.weights["weight"].to_numpy()
    assert weights[uninsured.to_numpy()].sum() / weights.sum() == pytest.approx(0.2, abs=1e-3)


def test_calibrate_writes_no_file_it_was_not_given(population, tmp_path, capsys) -> None:
    """Issue 20 §1: ``--out w.parquet`` used to overwrite ``w.diagnostics.parquet`` too."""
    pool = tmp_path / "pop.parquet"
    population.to_parquet(pool)
    targets = tmp_path / "targets.csv"
    targets.write_text("variable,level,share\nsex,Male,0.5\nsex,Female,0.5\n")
    mine = tmp_path / "w.diagnostics.parquet"
    mine.write_bytes(b"the user's own file")
    code, text, _ = _run(
        [
            "calibrate",
            "--personas",
            str(pool),
            "--targets",
            f"csv:{targets}",
            "--out",
            str(tmp_path / "w.parquet"),
        ],
        capsys,
    )
    assert code == 0 and "status=converged" in text
    assert mine.read_bytes() == b"the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "pop.parquet",
        "targets.csv",
        "w.diagnostics.parquet",
        "w.parquet",
    ]


def test_a_failing_calibrate_keeps_the_weights_file(population, tmp_path, capsys) -> None:
    """Issue 20 §1: a calibrate that fails after reading (targets for a state not in the pool)
    used to replace the existing weights first."""
    pool = tmp_path / "pop.parquet"
    population.to_parquet(pool)
    targets = tmp_path / "targets.csv"
    targets.write_text("variable,level,share,group\nsex,Male,0.5,ZZ\nsex,Female,0.5,ZZ\n")
    weights = tmp_path / "w.parquet"
    weights.write_bytes(b"earlier weights")
    code, _, err = _run(
        [
            "calibrate",
            "--personas",
            str(pool),
            "--targets",
            f"csv:{targets}",
            "--by",
            "state",
            "--out",
            str(weights),
        ],
        capsys,
    )
    assert code == 2 and "ZZ" in err, err
    assert weights.read_bytes() == b"earlier weights"
