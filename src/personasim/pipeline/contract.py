"""One contract for every stage of a study: inputs, outputs, key columns, spec sections, run.

A :class:`Stage` declares the tables it reads (``inputs``), the tables it writes (``outputs``),
the key columns of its main output, the parts of the spec it depends on (``config``) and the
function that computes it. The driver (:func:`personasim.pipeline.driver.run_study`) uses the
declaration
for resume:

* a stage is *stale* when the SHA-256 of one of its input files, or of its spec sections, differs
  from what was recorded when it last finished (``stages.json`` in the run directory, copied into
  the manifest) — never because of a file's mtime;
* a stale stage's outputs are removed and recomputed; so are those of every stage downstream,
  because their recorded input hashes no longer match;
* a fresh, non-resumable stage is skipped; a resumable stage (personas, simulate) is run again and
  computes only the rows its output lacks (a persona whose generation failed for a transient
  reason is retried), which costs no model call when nothing is missing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personasim.core.tables import file_sha256, write_text_atomic
from personasim.spec.study import StudySpec

LEDGER = "stages.json"
"""File in the run directory recording each finished stage's input and spec hashes."""


@dataclass(frozen=True)
class Stage:
    """What a stage reads, writes and depends on, and how it runs."""

    name: str
    """Stage name (``population``, ``personas``, ...)."""
    inputs: Callable[[StudySpec], list[str]]
    """Run-directory files the stage reads (from earlier stages)."""
    outputs: Callable[[StudySpec], list[str]]
    """Run-directory files the stage writes."""
    keys: tuple[str, ...]
    """Key columns of the main (first) output table: one row per key."""
    config: Callable[[StudySpec], Any]
    """The spec sections the stage depends on, as plain data."""
    run: Callable[..., None]
    """``run(ctx)`` computes the outputs (``ctx``:
    :class:`personasim.pipeline.driver.StageContext`)."""
    resumable: bool = False
    """True when the stage fills in missing rows of its existing output (run on every pass)."""
    always: bool = False
    """True when the stage runs on every pass (the report)."""


def file_sha(path: Path) -> str | None:
    """SHA-256 of a file's bytes (:func:`personasim.core.tables.file_sha256`), or None when it does
    not exist."""
    return file_sha256(path) if path.exists() else None


def config_sha(config: Any) -> str:
    """SHA-256 of a stage's spec sections (canonical JSON)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(stage: Stage, spec: StudySpec, run: Path) -> dict[str, Any]:
    """What a stage's freshness depends on now: its input hashes and its spec hash."""
    return {"inputs": {name: file_sha(run / name) for name in stage.inputs(spec)},
            "config": config_sha(stage.config(spec))}  # fmt: skip


def read_ledger(run: Path) -> dict[str, Any]:
    """The recorded fingerprints of finished stages (empty when none)."""
    path = run / LEDGER
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_ledger(run: Path, ledger: dict[str, Any]) -> None:
    """Write ``stages.json`` atomically."""
    write_text_atomic(json.dumps(ledger, indent=2, sort_keys=True) + "\n", run / LEDGER)


def state(stage: Stage, spec: StudySpec, run: Path, ledger: dict[str, Any]) -> str:
    """``fresh`` (recorded fingerprint matches, outputs present), ``stale`` (a recorded
    fingerprint differs) or ``new`` (never finished here)."""
    recorded = ledger.get(stage.name)
    if recorded is None:
        return "new"
    if recorded != fingerprint(stage, spec, run):
        return "stale"
    present = all((run / name).exists() for name in stage.outputs(spec))
    return "fresh" if present else "new"


def remove_outputs(stage: Stage, spec: StudySpec, run: Path) -> None:
    """Delete a stale stage's outputs (and the executor's parts they were published from, see
    :func:`personasim.pipeline.executor.parts_folder`) so that it is computed afresh."""
    import shutil

    from personasim.pipeline.executor import parts_folder

    for name in stage.outputs(spec):
        (run / name).unlink(missing_ok=True)
        shutil.rmtree(parts_folder(run, name), ignore_errors=True)
