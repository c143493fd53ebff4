"""Persona generation on the embedded model: personas per minute and validity per tier.

Generates every LLM tier for a few census-sampled persons with a fresh, empty cache (every reply
is a real model call) and prints, per tier: rows, wall seconds, personas per minute, first-attempt
and final validity, persons with a rewritten meta attribute, and the PERSONA tier's rejections per
cause (drafts judged inconsistent / checks, persons pruned, fills invalid), and the valid
personas with degenerate free text (``personasim.personas.quality``).
``--degenerate-retries 0,1`` runs each tier once per value with one shared cache, so the later
values reuse the first replies and pay only for the retries (their seconds are the retries').
Run: ``.venv/bin/python benchmarks/personas.py [--persons 5] [--state VT] [--string-length 40]
[--min-age 0] [--tiers persona] [--degenerate-retries 0,1]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from personasim.census import sample_population
from personasim.llm import Cache, get_backend
from personasim.personas.generate import generate_personas, percent, summarize
from personasim.personas.schema import LLM_TIERS


def main() -> None:
    """Run the benchmark and print one line per tier."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=5)
    parser.add_argument("--state", default="VT")
    parser.add_argument("--string-length", type=int, default=40)
    parser.add_argument("--description-length", type=int, default=300)
    parser.add_argument("--min-age", type=int, default=18, help="0: children too (PERSONA)")
    parser.add_argument("--tiers", default=",".join(LLM_TIERS))
    parser.add_argument("--degenerate-retries", default="0")
    args = parser.parse_args()
    retries = [int(r) for r in args.degenerate_retries.split(",")]
    population = sample_population(
        states=[args.state], per_state=args.persons, seed=11, min_age=args.min_age
    )
    with tempfile.TemporaryDirectory() as folder:
        backend = get_backend("llamacpp", cache=Cache(Path(folder) / "cache.sqlite"))
        print(
            f"model {backend.model_identity[:23]}  persons {len(population)}  "
            f"string_length {args.string_length}"
        )
        print(
            f"{'tier':<12} {'rows':>4} {'seconds':>8} {'per_min':>8} {'valid@1':>8} "
            f"{'valid':>7} {'contradict':>10} {'rejected':>9} {'pruned':>7} {'fill bad':>8} "
            f"{'retries':>7} {'degenerate':>10}"
        )
        total_rows, total_seconds = 0, 0.0
        for tier, retry in ((t, r) for t in args.tiers.split(",") for r in retries):
            started = time.perf_counter()
            table = generate_personas(
                population,
                tiers=[tier],
                backend=backend,
                string_length=args.string_length,
                description_length=args.description_length,
                degenerate_retries=retry,
            )
            seconds = time.perf_counter() - started
            row = summarize(table).iloc[0]
            rejected, pruned, bad = (
                percent(row[c]) for c in ("rejected_share", "pruned_share", "fill_invalid_share")
            )
            print(
                f"{tier:<12} {row.rows:>4} {seconds:>8.1f} {60 * row.rows / seconds:>8.1f} "
                f"{row.first_valid:>8.1%} {row.valid:>7.1%} {row.with_contradictions:>10} "
                f"{rejected:>9} {pruned:>7} {bad:>8} {retry:>7} {row.degenerate:>10}"
            )
            total_rows, total_seconds = total_rows + int(row.rows), total_seconds + seconds
        print(
            f"{'all':<12} {total_rows:>4} {total_seconds:>8.1f} "
            f"{60 * total_rows / total_seconds:>8.1f}   model calls {backend.stats.model_calls}"
        )


if __name__ == "__main__":
    main()
