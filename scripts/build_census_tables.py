"""Build the compact census tables that personasim ships, from the raw public files.

Reads the ACS 2018 PUMS person file and data dictionary (``census/pums/``) and the ACS 2023
profile tables (``census/acs2023_authors_repo/``) under ``--shared`` and writes, under
``--out`` (default: the package's ``census/data/``): ``seed.parquet``, ``targets.csv``,
``pob_labels.csv``, ``manifest.json``. Deterministic: same inputs -> same tables.

    python scripts/build_census_tables.py [--shared ../shared/data] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from personasim.census import pums, tables, targets
from personasim.core.errors import PersonasimError
from personasim.core.states import STATE_FIPS

PUMS_FILE = "census/pums/acs2018_1yr_pums_person_14states.csv.gz"
DICTIONARY_FILE = "census/pums/PUMS_Data_Dictionary_2018.csv"
ACS_DIR = "census/acs2023_authors_repo"
TARGET_YEAR = 2023


def build(shared: Path, out: Path) -> None:
    """Write the four shipped tables from the raw files under ``shared`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    labels = pums.dictionary_labels(shared / DICTIONARY_FILE, "POBP")
    pd.DataFrame(sorted(labels.items()), columns=["code", "label"]).to_csv(
        out / tables.POB_FILE, index=False, lineterminator="\n"
    )
    raw = pums.read_pums_csv(shared / PUMS_FILE)
    year = pums.survey_year(raw, shared / PUMS_FILE)
    seed = pums.build_seed(raw, year, pob_labels=labels)
    seed = pums.finalize_seed(seed)
    seed.to_parquet(out / tables.SEED_FILE, index=False, compression="zstd")
    states = [s for s in STATE_FIPS if s != "DC"]
    figures = targets.build_targets_table(shared / ACS_DIR, states)
    figures.to_csv(out / tables.TARGETS_FILE, index=False, lineterminator="\n", float_format="%.6g")
    manifest = {
        "seed": f"ACS {year} 1-year PUMS persons",
        "seed_years": [year],
        "target_year": TARGET_YEAR,
        "seed_states": sorted(int(s) for s in seed["st"].unique()),
    }
    (out / tables.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--shared", type=Path, default=root.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=tables.DATA_DIR)
    args = parser.parse_args()
    try:
        build(args.shared, args.out)
    except PersonasimError as error:
        print(f"error: {error.one_line()}", file=sys.stderr)
        return 2
    print(f"wrote census tables to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
