"""Build the packaged election ground truth from the shared MEDSL-derived election files.

Reads ``president_state_2016_2020_2024.csv`` and ``electoral_votes_2016_2020_2024.csv`` from
``--data`` and writes a compact derived table ``elections.csv`` into ``--out``: one row per state
and year (plus one national row per year, ``state = US``) with Democratic and Republican votes,
their sum, the Democratic two-party share, electoral votes and the two-party winner.

Usage::

    python scripts/build_election_truth.py \
        --data ../shared/data/elections --out src/personasim/truth/data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

RESULTS = "president_state_2016_2020_2024.csv"
ELECTORAL = "electoral_votes_2016_2020_2024.csv"
COLUMNS = [
    "year",
    "level",
    "state",
    "state_name",
    "dem_votes",
    "rep_votes",
    "two_party_votes",
    "dem_share",
    "electoral_votes",
    "winner",
]


def state_rows(results: pd.DataFrame, electoral: pd.DataFrame) -> pd.DataFrame:
    """Per state and year: votes, two-party share, electoral votes and winner."""
    merged = results.merge(electoral, on=["year", "state_po"], how="outer", validate="1:1")
    if merged[["dem_votes", "electoral_votes"]].isna().any().any():
        raise SystemExit("results and electoral votes do not cover the same states and years")
    out = pd.DataFrame(
        {
            "year": merged["year"].astype(int),
            "level": "state",
            "state": merged["state_po"],
            "state_name": merged["state"],
            "dem_votes": merged["dem_votes"].astype(int),
            "rep_votes": merged["rep_votes"].astype(int),
            "electoral_votes": merged["electoral_votes"].astype(int),
        }
    )
    return out


def national_rows(states: pd.DataFrame) -> pd.DataFrame:
    """One row per year summing the states (``state = US``)."""
    sums = states.groupby("year", as_index=False)[
        ["dem_votes", "rep_votes", "electoral_votes"]
    ].sum()
    sums["level"] = "national"
    sums["state"] = "US"
    sums["state_name"] = "United States"
    return sums


def finish(table: pd.DataFrame) -> pd.DataFrame:
    """Add two-party totals, share (8 decimals) and winner; order rows and columns."""
    table = table.copy()
    table["two_party_votes"] = table["dem_votes"] + table["rep_votes"]
    table["dem_share"] = (table["dem_votes"] / table["two_party_votes"]).round(8)
    table["winner"] = (table["dem_votes"] > table["rep_votes"]).map({True: "dem", False: "rep"})
    table["level_order"] = (table["level"] == "national").astype(int)
    table = table.sort_values(["year", "level_order", "state"]).reset_index(drop=True)
    return table[COLUMNS]


def build(data_dir: Path) -> pd.DataFrame:
    """The derived election truth table from the two source files in ``data_dir``."""
    results = pd.read_csv(data_dir / RESULTS)
    electoral = pd.read_csv(data_dir / ELECTORAL)[["year", "state_po", "electoral_votes"]]
    states = state_rows(results, electoral)
    return finish(pd.concat([states, national_rows(states)], ignore_index=True))


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the table and write ``elections.csv``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--data", type=Path, default=root.parent / "shared" / "data" / "elections")
    parser.add_argument("--out", type=Path, default=root / "src" / "personasim" / "truth" / "data")
    args = parser.parse_args(argv)
    table = build(args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "elections.csv"
    table.to_csv(target, index=False, float_format="%.8f", lineterminator="\n")
    print(f"wrote {len(table)} rows to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
