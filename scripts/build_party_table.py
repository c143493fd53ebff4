"""Build the compact party-identification table that personasim ships, from the raw Pew file.

Reads ``politics/pew_rls2014_party_affiliation_by_state.csv`` under ``--shared`` (Pew Research
Center, 2014 Religious Landscape Study, party affiliation by state, all adults) and writes
``party_by_state.csv`` (``state, rep_lean_rep, no_lean, dem_lean_dem, sample_size``: the figures
only, percentages as published) under ``--out`` (default: the package's ``calibrate/data/``).
Deterministic: same input -> same bytes.

    python scripts/build_party_table.py [--shared ../shared/data] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from personasim.calibrate.targets import PARTY_COLUMNS, PARTY_DIR, PARTY_FILE
from personasim.core.errors import DataError, PersonasimError
from personasim.core.tables import read_table

RAW_FILE = "politics/pew_rls2014_party_affiliation_by_state.csv"
RAW_COLUMNS = {
    "state_po": "state",
    "rep_lean_rep_pct": "rep_lean_rep",
    "no_lean_pct": "no_lean",
    "dem_lean_dem_pct": "dem_lean_dem",
    "sample_size": "sample_size",
}


def build(shared: Path, out: Path) -> Path:
    """Write ``party_by_state.csv`` from the raw Pew file under ``shared`` into ``out``."""
    raw = read_table(shared / RAW_FILE, "Pew party table", list(RAW_COLUMNS))
    table = raw[list(RAW_COLUMNS)].rename(columns=RAW_COLUMNS).sort_values("state")
    sums = table[["rep_lean_rep", "no_lean", "dem_lean_dem"]].sum(axis=1)
    if len(table) != 51 or not sums.between(98, 102).all():
        raise DataError(f"{shared / RAW_FILE}: expected 51 rows whose percentages add to 100")
    out.mkdir(parents=True, exist_ok=True)
    path = out / PARTY_FILE
    table[list(PARTY_COLUMNS)].to_csv(path, index=False, lineterminator="\n")
    return path


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--shared", type=Path, default=root.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=PARTY_DIR)
    args = parser.parse_args()
    try:
        path = build(args.shared, args.out)
    except PersonasimError as error:
        print(f"error: {error.one_line()}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({len(pd.read_csv(path))} states)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
