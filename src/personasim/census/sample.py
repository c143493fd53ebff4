"""Draw census-grounded populations: rake the pooled seed to each state, then draw by weight.

Python API::

    from personasim.census import sample_population, write_population
    frame = sample_population(["CA", "TX"], per_state=1000, seed=7)
    write_population(frame, "population.parquet")

Every draw is seeded per state (``SeedSequence([seed, state FIPS])``), so a state's people do
not depend on which other states are drawn with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from personasim.census import controls as c
from personasim.census import mapping as m
from personasim.census import pums, tables, targets
from personasim.census.rake import RakeOptions, RakeReport, rake
from personasim.census.weights_cache import WeightsCache, default_cache_dir, entry_key, seed_digest
from personasim.core.errors import ConfigError, DataError, did_you_mean, validation_error
from personasim.core.states import STATE_FIPS
from personasim.core.tables import write_atomic

DC_NOTE = (
    "DC has no ACS target tables in the shipped data; its people are drawn from the pooled seed "
    "raked to national targets (sum of the 50 states), so they look like the US, not like DC"
)


class PopulationSpec(BaseModel):
    """What population to draw."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    states: tuple[str, ...] = Field(description="USPS codes (upper case); 'DC' uses a fallback.")
    per_state: int | None = Field(1000, ge=1, description="People per state.")
    total: int | None = Field(
        None, ge=1, description="Instead of per_state: people in all, split by adult population."
    )
    seed: int = Field(0, ge=0, description="Random seed; same seed -> same population.")
    min_age: int = Field(18, ge=0, le=100, description="Youngest age drawn.")
    pums: tuple[Path, ...] = Field((), description="PUMS person CSVs to use as seed instead.")
    rake: RakeOptions = Field(default_factory=RakeOptions, description="Raking options.")

    @field_validator("states")
    @classmethod
    def _known(cls, states: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(resolve_states(states))


@dataclass
class Population:
    """A drawn population and how the raking went per state."""

    frame: pd.DataFrame
    reports: list[RakeReport] = field(default_factory=list)


def resolve_states(states: Iterable[str]) -> list[str]:
    """Upper-case USPS codes; ``all`` means the 50 states and DC. Unknown codes raise.

    ``states`` is a list of codes or one comma-separated string (``"CA,TX"``, ``"all"``)."""
    if isinstance(states, str):
        states = states.split(",")
    wanted: list[str] = []
    for raw in states:
        code = raw.strip().upper()
        if code == "ALL":
            wanted += sorted(STATE_FIPS)
        elif code in STATE_FIPS:
            wanted.append(code)
        elif code:
            hint = did_you_mean(code, STATE_FIPS, n=3, otherwise="use USPS codes, e.g. CA")
            raise ConfigError(f"unknown state code '{raw.strip()}'", hint)
    if not wanted:
        raise ConfigError("no states given", "use --states CA,TX or --states all")
    return list(dict.fromkeys(wanted))


def state_figures(state: str, target_table: pd.DataFrame) -> tuple[dict[str, float], str]:
    """ACS figures for one state and a note; DC (no tables) falls back to national sums."""
    rows = target_table[target_table["state"] == state]
    if rows.empty:
        if state != "DC":
            raise DataError(f"no ACS targets for {state} in the census tables", "rebuild them")
        return targets.national_figures(target_table), DC_NOTE
    return dict(zip(rows["key"], rows["value"], strict=True)), ""


def rake_state(
    state: str, seed: pd.DataFrame, target_table: pd.DataFrame, options: RakeOptions | None = None
) -> tuple[np.ndarray, RakeReport]:
    """Seed weights raked to one state's ACS 2023 marginals (every control)."""
    figures, note = state_figures(state, target_table)
    weights, report = rake(
        seed["pwgtp"].to_numpy(), c.build_controls(seed, figures), state, options
    )
    return weights, report.model_copy(update={"note": note})


def rake_state_cached(
    state: str,
    seed: pd.DataFrame,
    target_table: pd.DataFrame,
    options: RakeOptions,
    cache: WeightsCache,
    seed_hash: str,
) -> tuple[np.ndarray, RakeReport]:
    """:func:`rake_state` through the weights cache (``seed_hash``: :func:`seed_digest`)."""
    figures, note = state_figures(state, target_table)
    key = entry_key(state, seed_hash, figures, note, options)
    return cache.get_or_rake(key, len(seed), lambda: rake_state(state, seed, target_table, options))


def draw_indices(
    weights: np.ndarray, eligible: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` seed rows drawn with replacement, probability proportional to weight."""
    cumulative = np.cumsum(np.where(eligible, weights, 0.0))
    if cumulative[-1] <= 0:
        raise DataError("no seed person is eligible (check --min-age)", "lower --min-age")
    picks = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
    return np.minimum(picks, len(weights) - 1)


def state_rng(seed: int, state: str) -> np.random.Generator:
    """The random generator of one state for one seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, STATE_FIPS[state]]))


def allocate(total: int, sizes: Sequence[float]) -> list[int]:
    """Split ``total`` proportionally to ``sizes`` (largest remainder; deterministic)."""
    share = np.asarray(sizes, dtype=float) / float(np.sum(sizes)) * total
    counts = np.floor(share).astype(int)
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts.tolist()


def people(
    seed: pd.DataFrame, rows: np.ndarray, state: str, weight: float, source: str
) -> pd.DataFrame:
    """Output rows (``population.parquet`` columns except ``person_id``) for drawn seed rows."""
    attrs = [col for col in m.POPULATION_COLUMNS if col in seed.columns]
    frame = seed[attrs].iloc[rows].reset_index(drop=True)
    frame.insert(0, "state", state)
    frame.insert(1, "weight", weight)
    frame["source"] = source
    return frame


def source_label(years: Sequence[int], state: str) -> str:
    """The ``source`` value: seed and target years (and the DC fallback)."""
    seed_part = "+".join(f"pums{y}" for y in years)
    return f"{seed_part}/acs2023" + ("-national" if state == "DC" else "")


def load_seed_for(spec: PopulationSpec) -> tuple[pd.DataFrame, list[int]]:
    """The shipped seed, or one built from the user's PUMS files."""
    if spec.pums:
        return pums.load_pums(spec.pums)
    return tables.load_seed(), list(tables.load_manifest()["seed_years"])


def build_population(
    spec: PopulationSpec,
    progress: Callable[[Iterable], Iterable] | None = None,
    cache: WeightsCache | None = None,
) -> Population:
    """Rake and draw every state of ``spec``; ``progress`` wraps the state loop (e.g. tqdm).

    Raked weights come from ``cache`` (default: the folder of :func:`default_cache_dir`)."""
    seed, years = load_seed_for(spec)
    target_table = tables.load_targets()
    eligible = seed["age"].to_numpy() >= spec.min_age
    cache = cache or WeightsCache(default_cache_dir())
    seed_hash = seed_digest(seed) if cache.directory is not None else ""
    raked, reports = {}, []
    for state in (progress or iter)(spec.states):
        raked[state], report = rake_state_cached(
            state, seed, target_table, spec.rake, cache, seed_hash
        )
        reports.append(report)
    adults = [float(raked[s][eligible].sum()) for s in spec.states]
    counts = allocate(spec.total, adults) if spec.total else [spec.per_state] * len(spec.states)
    frames = []
    for state, n, size in zip(spec.states, counts, adults, strict=True):
        rows = draw_indices(raked[state], eligible, n, state_rng(spec.seed, state))
        frames.append(people(seed, rows, state, size / max(n, 1), source_label(years, state)))
    return Population(finish(frames), reports)


def finish(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate states, number people, order columns, make text columns categorical."""
    frame = pd.concat(frames, ignore_index=True)
    frame.insert(0, "person_id", np.arange(len(frame), dtype=np.int64))
    for col in ("state", "source"):
        frame[col] = frame[col].astype("category")
    frame["age"] = frame["age"].astype(np.int16)
    return frame[list(m.POPULATION_COLUMNS)]


def sample_population(
    states: Sequence[str] | str,
    per_state: int | None = 1000,
    seed: int = 0,
    min_age: int = 18,
    total: int | None = None,
    pums_paths: Sequence[Path] = (),
) -> pd.DataFrame:
    """Draw ``per_state`` people (or ``total`` split by adult population) for each state.

    ``states``: USPS codes, as a list or one comma-separated string; ``"all"`` is every state
    and DC."""
    codes = tuple(states.split(",")) if isinstance(states, str) else tuple(states)
    spec = _spec(
        states=codes,
        per_state=None if total else per_state,
        total=total,
        seed=seed,
        min_age=min_age,
        pums=tuple(Path(p) for p in pums_paths),
    )
    return build_population(spec).frame


def _spec(**fields: object) -> PopulationSpec:
    """A :class:`PopulationSpec`, with validation errors turned into one-line ConfigErrors."""
    from pydantic import ValidationError

    try:
        return PopulationSpec(**fields)
    except ValidationError as error:
        raise validation_error(
            error,
            "population options",
            hint="see personasim population --help",
            locate=lambda loc: "--" + ".".join(map(str, loc)).replace("_", "-"),
            known_fields=lambda _loc: PopulationSpec.model_fields,
        ) from None


def write_population(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a population frame to Parquet atomically (parent folders are created)."""
    path = Path(path)
    try:
        write_atomic(frame, path)
    except OSError as error:
        raise DataError(
            f"cannot write {path}: {error.strerror}", "check the output path"
        ) from error
    return path
