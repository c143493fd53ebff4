"""``stages.json``: what each finished stage of a run directory depended on, and what it wrote.

The driver (:mod:`personasim.pipeline.driver`) writes it after every stage; the report reads
:func:`declared_outputs` so that it shows only the tables the study still declares.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from personasim.core.tables import write_text_atomic

LEDGER = "stages.json"
"""File in the run directory: per finished stage, its fingerprint and its outputs."""


def read_ledger(run: Path) -> dict[str, Any]:
    """The recorded entries of finished stages (empty when none or unreadable)."""
    path = Path(run) / LEDGER
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_ledger(run: Path, ledger: dict[str, Any]) -> None:
    """Write ``stages.json`` atomically."""
    write_text_atomic(json.dumps(ledger, indent=2, sort_keys=True) + "\n", Path(run) / LEDGER)


def declared_outputs(run: Path) -> set[str] | None:
    """Every output the ledger records for the run's finished stages (run-relative names), or
    None when the directory has no ledger (a folder written by hand: everything present
    counts)."""
    ledger = read_ledger(run)
    if not ledger:
        return None
    return {
        name
        for entry in ledger.values()
        if isinstance(entry, dict)
        for name in entry.get("outputs") or []
    }
