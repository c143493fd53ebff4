"""Census-grounded populations: the pooled ACS PUMS seed raked to each state's ACS marginals.

Main entry points: :func:`sample_population` (a pandas DataFrame of people) and
:func:`write_population` (Parquet). Attribute values and their PUMS sources are documented in
:mod:`personasim.census.mapping` and ``docs/census.md``.
"""

from personasim.census.rake import RakeOptions, RakeReport
from personasim.census.sample import (
    Population,
    PopulationSpec,
    build_population,
    sample_population,
    write_population,
)

__all__ = [
    "Population",
    "PopulationSpec",
    "RakeOptions",
    "RakeReport",
    "build_population",
    "sample_population",
    "write_population",
]
