"""Command-line options shared by the model-calling commands (``personas``, ``simulate``,
``run``): which executor, and the backend recipe a Ray actor opens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from personasim.executor.base import BackendRecipe, ExecutorSpec


def executor_options(function: Any) -> Any:
    """``--executor``, ``--ray-address``, ``--actors``, ``--batch-persons``."""
    function = click.option(
        "--batch-persons",
        type=click.IntRange(min=1),
        default=None,
        help="Persons per batch (one committed part each) [default: 32, or the spec's].",
    )(function)
    function = click.option(
        "--actors",
        type=click.IntRange(min=1),
        default=None,
        help="Ray: actors in the pool [default: what the cluster's CPUs allow].",
    )(function)
    function = click.option(
        "--ray-address",
        default=None,
        metavar="auto|ray://HOST:PORT",
        help="Ray: join this cluster [default: start a local Ray for the run].",
    )(function)
    return click.option(
        "--executor",
        "executor_kind",
        type=click.Choice(["local", "ray"]),
        default=None,
        help="Where model calls run: in this process, or on Ray Data actors "
        "(pip install 'personasim[ray]') [default: local, or the spec's].",
    )(function)


def executor_spec(
    base: ExecutorSpec | None,
    kind: str | None,
    address: str | None,
    actors: int | None,
    batch_persons: int | None,
    source: str = "study",
) -> ExecutorSpec:
    """``base`` (e.g. a study spec's ``[executor]``, read from ``source``) with the options given
    on the command line; a Ray address that does not answer is refused here, in seconds."""
    given = {"kind": kind, "address": address, "actors": actors, "batch_persons": batch_persons}
    update = {k: v for k, v in given.items() if v is not None}
    spec = ExecutorSpec(**{**(base or ExecutorSpec()).model_dump(), **update})
    if spec.kind == "ray":  # an unreachable cluster: one line in seconds, before any work
        from personasim.executor.ray import check_ray_address

        check_ray_address(
            spec.address, "--ray-address" if address else f"{source}: executor.address"
        )
    return spec


def backend_recipe(
    model: str, cache_path: str | None, no_cache: bool, pairs: tuple[str, ...]
) -> BackendRecipe:
    """The recipe of the backend the usual ``--model/--cache/--no-cache/-o`` options name."""
    from personasim.cli.llm import parse_options
    from personasim.llm.cache import default_cache_path

    # absolute: a Ray worker does not share the driver's working directory
    path = Path(cache_path) if cache_path else default_cache_path()
    cache = None if no_cache else str(path.resolve())
    return BackendRecipe(model, tuple(parse_options(pairs).items()), cache)
