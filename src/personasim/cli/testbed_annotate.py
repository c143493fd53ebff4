"""The body of ``personasim testbed annotate``: check the inputs, write the items next to the
labels, serve the page until Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import click

from personasim.cli.testbed_roleplay import fixed_items
from personasim.core.errors import ConfigError
from personasim.core.tables import check_output_dir, write_atomic
from personasim.testbed.annotate import make_server, read_roster


def serve(
    source: str, roster_path: Path, per_persona: int, seed: int, port: int, out_dir: Path
) -> None:
    """Serve the annotation page for ``source``'s items; labels go to ``out_dir/labels``."""
    check_output_dir(out_dir)
    items = fixed_items(source, per_persona, seed)
    if items is None:
        raise ConfigError(
            f"--items {source!r}: the page needs fixed items",
            hint="give pairs:PAIRS.parquet or items:ITEMS.parquet",
        )
    roster = read_roster(roster_path, items)
    try:
        server = make_server(items, roster, out_dir, port)
    except OSError as error:
        raise ConfigError(
            f"cannot listen on 127.0.0.1:{port} ({error.strerror})",
            hint="choose another --port, or 0 for any free one",
        ) from None
    write_atomic(items, out_dir / "items.parquet")
    click.echo(
        f"annotation page: {server.url}  (labels in {out_dir / 'labels'}; "
        f"agreement reads --items items:{out_dir / 'items.parquet'} "
        f"--humans {out_dir / 'labels'}); Ctrl-C stops"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped; every submitted label is on disk, rerun to resume")
    finally:
        server.server_close()
