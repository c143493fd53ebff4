"""``personasim population``: draw a census-grounded population; ``population check``: fidelity.

personasim population --states CA,TX --per-state 1000 --seed 7 --out population.parquet
personasim population check --states VT,NH --per-state 20000
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from personasim.core.errors import ConfigError
from personasim.core.states import FIPS_STATE, STATE_FIPS

if TYPE_CHECKING:
    from personasim.census.rake import RakeReport

# numpy, pandas, tqdm and the census modules are imported where a command runs, so that
# `personasim population --help` loads none of them.

Echo = Callable[[str], None]


def _progress(desc: str, quiet: bool) -> Callable:
    """A tqdm wrapper over states, on stderr."""
    from tqdm import tqdm

    return lambda items: tqdm(items, desc=desc, unit="state", file=sys.stderr, disable=quiet)


def summary_table(reports: list[RakeReport], counts: dict[str, int]) -> str:
    """One line per state: people, sweeps, convergence, ESS, worst control, unmet controls."""
    lines = [
        f"{'state':5} {'people':>7} {'iter':>4} {'conv':>4} {'ESS':>7}  "
        "worst control (rel. error)  unmet"
    ]
    for r in reports:
        worst = max(r.max_rel_error, key=r.max_rel_error.get)
        lines.append(
            f"{r.state:5} {counts.get(r.state, 0):>7} {r.iterations:>4} "
            f"{'yes' if r.converged else 'no':>4} {r.ess:>7.0f}  "
            f"{worst} ({r.max_rel_error[worst]:.2%})    {'; '.join(r.unmet) or '-'}"
        )
    lines += [f"note: {r.state}: {r.note}" for r in reports if r.note]
    return "\n".join(lines)


@click.group("population", invoke_without_command=True)
@click.option(
    "--states", default=None, help="USPS codes, comma-separated, or 'all' (50 states + DC)."
)
@click.option("--per-state", type=int, default=1000, show_default=True, help="People per state.")
@click.option("--total", type=int, default=None, help="People in all, split by adult population.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--min-age", type=int, default=18, show_default=True, help="Youngest age drawn.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("population.parquet"),
    show_default=True,
    help="Output Parquet file.",
)
@click.option(
    "--pums",
    type=click.Path(path_type=Path),
    multiple=True,
    help="PUMS person CSV(s) or folder (ACS 2018+) to use as seed.",
)
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
@click.pass_context
def population_group(
    ctx: click.Context,
    states: str | None,
    per_state: int,
    total: int | None,
    seed: int,
    min_age: int,
    out: Path,
    pums: tuple[Path, ...],
    quiet: bool,
) -> None:
    """Draw people per state from ACS PUMS persons raked to ACS 2023 state marginals.

    Each state's raked weights are cached on disk, keyed by a hash of the seed table, the
    state's targets, the raking options and the raking code: in $PERSONASIM_WEIGHTS_CACHE, else
    .personasim/census-weights/ in the current folder (set PERSONASIM_WEIGHTS_CACHE=off to
    disable). A damaged entry is recomputed; deleting the folder is always safe.
    """
    if ctx.invoked_subcommand is not None:
        return
    if not states:
        raise ConfigError("no states given", "use --states CA,TX or --states all")
    from personasim.census.sample import _spec, build_population, write_population
    from personasim.core.tables import check_output

    spec = _spec(
        states=tuple(states.split(",")),
        per_state=None if total else per_state,
        total=total,
        seed=seed,
        min_age=min_age,
        pums=pums,
    )
    check_output(out, [("--pums", p) for p in pums])
    result = build_population(spec, progress=_progress("raking", quiet))
    path = write_population(result.frame, out)
    if not quiet:
        counts = result.frame["state"].value_counts().to_dict()
        click.echo(summary_table(result.reports, counts), err=True)
    click.echo(f"wrote {len(result.frame)} people to {path}")


@population_group.command("check")
@click.option(
    "--states", default="VT,NM,HI", show_default=True, help="States for the marginal TVD ('all')."
)
@click.option(
    "--per-state", type=int, default=20000, show_default=True, help="Sample size per state."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--loso/--no-loso",
    default=True,
    show_default=True,
    help="Leave-one-state-out on the seed states.",
)
@click.option(
    "--throughput/--no-throughput", default=True, show_default=True, help="Time 1,000,000 draws."
)
def check_command(states: str, per_state: int, seed: int, loso: bool, throughput: bool) -> None:
    """Print fidelity: marginal TVD, leave-one-state-out joints, implausible combinations, speed."""
    from personasim.census.sample import resolve_states

    run_check(resolve_states(states.split(",")), per_state, seed, loso, throughput, click.echo)


def run_check(
    states: list[str], per_state: int, seed: int, loso: bool, throughput: bool, echo: Echo
) -> None:
    """Run every fidelity check and print the figures."""
    from personasim.census import tables

    if per_state < 1:
        raise ConfigError(f"--per-state must be at least 1, got {per_state}", "")
    seed_table, targets = tables.load_seed(), tables.load_targets()
    check_marginals(seed_table, targets, states, per_state, seed, echo)
    check_joints(states, per_state, seed, echo)
    if loso:
        check_loso(seed_table, targets, echo)
    if throughput:
        check_throughput(seed_table, targets, seed, echo)


def check_marginals(seed_table, targets, states: list[str], n: int, seed: int, echo: Echo) -> None:  # noqa: ANN001
    """(1) Per state and control, TVD of an all-ages sample vs the ACS 2023 target."""
    import numpy as np
    from tqdm import tqdm

    from personasim.analysis import fidelity  # scipy: only the check needs it

    echo(
        f"\n(1) marginal TVD, sample of {n} (all ages) vs ACS 2023 target  "
        "[noise = same-size multinomial]"
    )
    means = []
    for state in tqdm(states, desc="marginals", file=sys.stderr, unit="state"):
        result = fidelity.marginal_tvds(seed_table, targets, state, n, seed)
        mean = float(np.mean([v[0] for v in result.values()]))
        noise = float(np.mean([v[1] for v in result.values()]))
        race = result["race_ethnicity"]
        means.append((mean, noise))
        echo(
            f"  {state}: mean TVD {mean:.4f} (noise {noise:.4f}); "
            f"race x Hispanic {race[0]:.4f} (noise {race[1]:.4f})"
        )
    echo(
        f"  all states: mean TVD {np.mean([x[0] for x in means]):.4f} "
        f"(noise {np.mean([x[1] for x in means]):.4f})"
    )


def check_joints(states: list[str], n: int, seed: int, echo: Echo) -> None:
    """Paper joint checks and implausible combinations on an adult sample."""
    from personasim.analysis import fidelity  # scipy: only the check needs it
    from personasim.census.sample import PopulationSpec, build_population

    frame = build_population(PopulationSpec(states=tuple(states), per_state=n, seed=seed)).frame
    echo(f"\n(2a) joint checks on {len(frame)} sampled adults  [paper's published sampler]")
    ours = fidelity.paper_checks(frame)
    labels = {
        "ba_plus_18_19": "18-19 with bachelor's or more",
        "married_18_19": "18-19 married",
        "widowed_18_19": "18-19 widowed",
        "veterans_female": "veterans who are women",
    }
    for key, label in labels.items():
        echo(f"  {label:32} {ours[key]:7.1%}   [paper {fidelity.PAPER[key]:.1%}]")
    echo("\n(3) impossible or implausible combinations (goal 0)")
    for key, count in fidelity.implausible_counts(frame).items():
        echo(f"  {key:50} {count}")


def check_loso(seed_table, targets, echo: Echo) -> None:  # noqa: ANN001
    """(2b) Leave-one-state-out over the seed states vs a chained-marginals sampler."""
    import numpy as np
    from tqdm import tqdm

    from personasim.analysis import fidelity  # scipy: only the check needs it

    echo(
        "\n(2b) leave-one-state-out, adults: mean pairwise joint TVD vs the state's real weighted "
        "2018 PUMS (pairs: " + ", ".join(f"{x} x {y}" for x, y in fidelity.PAIRS) + ")"
    )
    echo(
        "     ours/acs23 = other 13 seed states raked to the state's ACS 2023 targets; "
        "ours/own18 = raked to the same controls measured on the state's own 2018 records; "
        "chained = attributes independent, from the state's own real 2018 marginals"
    )
    rows = []
    for fips in tqdm(sorted(seed_table["st"].unique()), desc="leave-one-out", file=sys.stderr):
        acs = fidelity.loso_state(seed_table, targets, int(fips))
        own = fidelity.loso_state(seed_table, targets, int(fips), own=True)
        row = (
            np.mean([v[0] for v in acs.values()]),
            np.mean([v[0] for v in own.values()]),
            np.mean([v[1] for v in acs.values()]),
        )
        rows.append(row)
        echo(
            f"  {FIPS_STATE[int(fips)]}: ours/acs23 {row[0]:.4f}  ours/own18 {row[1]:.4f}  "
            f"chained {row[2]:.4f}"
        )
    acs, own, chained = np.mean(rows, axis=0)
    echo(
        f"  mean: ours/acs23 {acs:.4f} (ratio {acs / chained:.2f})  ours/own18 {own:.4f} "
        f"(ratio {own / chained:.2f})  chained {chained:.4f}   goal: ratio <= 0.33"
    )


def check_cross_controls(seed_table, targets, echo: Echo) -> None:  # noqa: ANN001
    """Leave-one-state-out before (one-way controls) and after (plus the S2301 cross-tabs), with
    ACS 2023 targets and with the controls measured on each state's own 2018 records."""
    import numpy as np
    from tqdm import tqdm

    from personasim.analysis import fidelity  # scipy: only the check needs it
    from personasim.census.controls import MARGINAL_CONTROLS

    echo(
        "\n(2c) cross-tabulated controls (S2301 employment by age, sex, education): "
        "leave-one-state-out mean pairwise joint TVD, before -> after"
    )
    sums: dict[str, list[tuple[float, float]]] = {}
    for own in (False, True):
        rows = []
        for fips in tqdm(sorted(seed_table["st"].unique()), desc="cross controls", file=sys.stderr):
            before = fidelity.loso_state(seed_table, targets, int(fips), own, MARGINAL_CONTROLS)
            after = fidelity.loso_state(seed_table, targets, int(fips), own)
            rows.append((before, after))
        label = "own18" if own else "acs23"
        for pair in rows[0][0]:
            b, a = (float(np.mean([r[i][pair][0] for r in rows])) for i in (0, 1))
            sums.setdefault(label, []).append((b, a))
            echo(f"  {label} {pair:28} {b:.4f} -> {a:.4f}")
    for label, pairs in sums.items():
        b, a = np.mean(pairs, axis=0)
        echo(f"  {label} mean over pairs: {b:.4f} -> {a:.4f}")


def check_throughput(seed_table, targets, seed: int, echo: Echo) -> None:  # noqa: ANN001
    """Time raking of all states (load) and 1,000,000 draws across them."""
    from tqdm import tqdm

    from personasim.census.sample import draw_indices, finish, people, rake_state, state_rng

    start = time.perf_counter()
    states = sorted(STATE_FIPS)
    raked = {
        s: rake_state(s, seed_table, targets)[0]
        for s in tqdm(states, desc="raking", file=sys.stderr)
    }
    loaded = time.perf_counter() - start
    eligible = seed_table["age"].to_numpy() >= 18
    start = time.perf_counter()
    per = 1_000_000 // len(states)
    rngs = {s: state_rng(seed, s) for s in states}
    frames = [
        people(seed_table, draw_indices(raked[s], eligible, per, rngs[s]), s, 1.0, "x")
        for s in states
    ]
    frame = finish(frames)
    drawn = time.perf_counter() - start
    echo(
        f"\nthroughput: raking {len(states)} states took {loaded:.1f} s (once per run); "
        f"drawing {len(frame):,} personas took {drawn:.2f} s = "
        f"{len(frame) / drawn:,.0f} personas/s  "
        f"[paper ~300/s]"
    )
