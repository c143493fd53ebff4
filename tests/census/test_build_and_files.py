"""Shipped tables: rebuilt identically from the raw files; bad files give one-line errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from personasim.census import pums, tables, targets
from personasim.core.errors import DataError
from personasim.core.states import STATE_FIPS


@pytest.mark.shared_data
@pytest.mark.slow
def test_build_reproduces_shipped_tables(shared_data: Path, tmp_path: Path) -> None:
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "scripts" / "build_census_tables.py"
    spec = importlib.util.spec_from_file_location("build_census_tables", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(shared_data, tmp_path)
    for name in (tables.TARGETS_FILE, tables.POB_FILE, tables.MANIFEST_FILE):
        assert (tmp_path / name).read_bytes() == (tables.DATA_DIR / name).read_bytes(), name
    built = pd.read_parquet(tmp_path / tables.SEED_FILE)
    pd.testing.assert_frame_equal(built, pd.read_parquet(tables.DATA_DIR / tables.SEED_FILE))


@pytest.mark.shared_data
def test_seed_weights_match_published_state_populations(shared_data: Path) -> None:
    seed = tables.load_seed()
    totals = seed.groupby("st")["pwgtp"].sum()
    assert totals[10] == 967_171 and totals[56] == 577_737  # DE, WY as in SOURCES.md


def test_shipped_seed_is_compact_and_complete() -> None:
    assert (tables.DATA_DIR / tables.SEED_FILE).stat().st_size < 5_000_000
    seed = tables.load_seed()
    assert len(seed) == 173_916 and seed["st"].nunique() == 14
    assert tables.target_states() == sorted(s for s in STATE_FIPS if s != "DC")


def test_missing_acs_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        targets.state_figures(tmp_path, "VT")
    assert "vt_dp02.csv" in error.value.one_line() or "vt_dp03.csv" in error.value.one_line()


def test_malformed_acs_file_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n")
    with pytest.raises(DataError, match="malformed"):
        targets.read_label_values(bad)


def test_missing_shipped_table_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing"):
        tables.load_targets(tmp_path)


def test_pums_file_without_columns_names_them(tmp_path: Path) -> None:
    path = tmp_path / "psam_p99.csv"
    path.write_text("SERIALNO,ST,AGEP\n2018HU1,50,40\n")
    with pytest.raises(DataError) as error:
        pums.read_pums_csv(path)
    assert "psam_p99.csv" in error.value.message and "PWGTP" in error.value.message


def test_missing_pums_path_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        pums.pums_files([tmp_path / "nope.csv"])


@pytest.mark.shared_data
def test_pums_loader_handles_2019_renames(shared_data: Path, tmp_path: Path) -> None:
    """A 2018 extract rewritten with 2019 names (RELSHIPP) and year loads like the original."""
    source = shared_data / "census" / "pums" / "acs2018_1yr_pums_person_14states.csv.gz"
    raw = pd.read_csv(source, usecols=list(pums.PUMS_COLUMNS), dtype=str, nrows=3000)
    raw = raw[raw["RELP"] != "11"].reset_index(drop=True)  # roomers have no 2019 code of their own
    original = pums.build_seed(raw.copy(), 2018)
    back = {v: k for k, v in pums.RENAMES["RELSHIPP"][1].items() if k not in (23, 24)}
    renamed = raw.assign(
        RELSHIPP=pd.to_numeric(raw["RELP"]).map(back).astype(str),
        SERIALNO="2019" + raw["SERIALNO"].str[4:],
    )
    renamed = renamed.drop(columns="RELP")
    path = tmp_path / "psam_p2019.csv.gz"
    with gzip.open(path, "wt") as handle:
        renamed.to_csv(handle, index=False)
    seed, years = pums.load_pums([path])
    assert years == [2019]
    assert seed["relp"].tolist() == original["relp"].tolist()
    assert (
        seed["household_type"].astype(str).tolist()
        == original["household_type"].astype(str).tolist()
    )


def test_pre_2018_pums_is_refused(tmp_path: Path) -> None:
    frame = pd.DataFrame({"SERIALNO": ["2016000001"]})
    with pytest.raises(DataError, match="2016"):
        pums.survey_year(frame, tmp_path / "old.csv")
