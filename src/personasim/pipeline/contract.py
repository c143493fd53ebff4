"""One contract for every stage of a study: inputs, outputs, key columns, spec sections, run.

A :class:`Stage` declares the tables it reads (``inputs``), the tables it writes (``outputs``),
the key columns of its main output, the parts of the spec it depends on (``config``) and the
function that computes it. The driver (:func:`personasim.pipeline.driver.run_study`) uses the
declaration
for resume:

* a stage is *stale* when something it depends on differs from what was recorded when it last
  finished (``stages.json`` in the run directory, copied into the manifest): the SHA-256 of one
  of its input tables, of its spec sections, of a file or folder those sections name (a survey,
  a truth file, a prompt file, a targets CSV, a model file; :func:`referenced_files`), or of the
  source code that computes it (:func:`code_digest` of ``Stage.code``) — never a file's mtime or
  name; :func:`state` says which of these changed, and the manifest keeps the reason;
* a stale stage's outputs are removed and recomputed; so are those of every stage downstream,
  because their recorded input hashes no longer match (a changed survey question costs model
  calls for that question only: every unchanged request is answered by the LLM cache);
* the ledger records each stage's outputs, so an output the spec no longer declares (a removed
  ``[calibration]`` or ``[testbed]``) is deleted (:func:`remove_undeclared`) and the report,
  which reads only declared tables, never shows it;
* a fresh, non-resumable stage is skipped; a resumable stage (personas, simulate) is run again and
  computes only the rows its output lacks (a persona whose generation failed for a transient
  reason is retried), which costs no model call when nothing is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personasim.core.hashing import code_digest, config_sha, referenced_files
from personasim.core.ledger import LEDGER, read_ledger, write_ledger
from personasim.core.tables import file_sha256
from personasim.spec.study import StudySpec

__all__ = [
    "LEDGER",
    "Stage",
    "fingerprint",
    "read_ledger",
    "record",
    "remove_outputs",
    "remove_undeclared",
    "state",
    "write_ledger",
]


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
    :class:`personasim.pipeline.context.StageContext`)."""
    resumable: bool = False
    """True when the stage fills in missing rows of its existing output (run on every pass)."""
    always: bool = False
    """True when the stage runs on every pass (the report)."""
    code: tuple[str, ...] = ()
    """Modules (dotted names; a package with all of its submodules) whose source computes the
    outputs: a change in them makes the stage stale (:func:`code_digest`)."""


def _table_sha(path: Path) -> str | None:
    """SHA-256 of a run-directory table's bytes, or None when it does not exist."""
    return file_sha256(path) if path.exists() else None


def fingerprint(stage: Stage, spec: StudySpec, run: Path) -> dict[str, Any]:
    """What a stage's freshness depends on now: its input tables, its spec sections, the files
    those sections name, and its code."""
    config = stage.config(spec)
    return {
        "inputs": {name: _table_sha(run / name) for name in stage.inputs(spec)},
        "config": config_sha(config),
        "files": referenced_files(config),
        "code": code_digest(stage.code),
    }


def record(stage: Stage, spec: StudySpec, run: Path) -> dict[str, Any]:
    """The ledger entry of a stage that just finished: its fingerprint and its outputs."""
    return {"fingerprint": fingerprint(stage, spec, run), "outputs": stage.outputs(spec)}


def _changes(recorded: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, in words (``input personas.parquet``, ``file
    survey.yaml``, ``spec``, ``code``)."""
    reasons = []
    for kind, label in (("inputs", "input"), ("files", "file")):
        old, new = recorded.get(kind) or {}, now.get(kind) or {}
        reasons += [
            f"{label} {name}"
            for name in sorted(set(old) | set(new))
            if old.get(name) != new.get(name)
        ]
    reasons += [kind for kind in ("config", "code") if recorded.get(kind) != now.get(kind)]
    return [reason.replace("config", "spec") for reason in reasons]


def state(
    stage: Stage, spec: StudySpec, run: Path, ledger: dict[str, Any]
) -> tuple[str, list[str]]:
    """``("fresh", [])`` (recorded fingerprint matches, outputs present), ``("stale",
    reasons)`` (what changed since it finished) or ``("new", reasons)`` (never finished here,
    or an output is missing)."""
    recorded = ledger.get(stage.name)
    if not isinstance(recorded, dict) or "fingerprint" not in recorded:
        return "new", ["not run here yet"]
    changes = _changes(recorded["fingerprint"], fingerprint(stage, spec, run))
    if changes:
        return "stale", changes
    missing = [name for name in stage.outputs(spec) if not (run / name).exists()]
    return ("new", [f"missing {name}" for name in missing]) if missing else ("fresh", [])


def _remove(run: Path, name: str) -> None:
    """Delete one output (a table or a folder) and the parts it was published from."""
    from personasim.pipeline.executor import parts_folder

    target = run / name
    if target.is_dir():
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)
    shutil.rmtree(parts_folder(run, name), ignore_errors=True)


def remove_outputs(stage: Stage, spec: StudySpec, run: Path) -> None:
    """Delete a stale stage's outputs (and the executor's parts they were published from, see
    :func:`personasim.pipeline.executor.parts_folder`) so that it is computed afresh."""
    for name in stage.outputs(spec):
        _remove(run, name)


def remove_undeclared(
    stages: Sequence[Stage], spec: StudySpec, run: Path, ledger: dict[str, Any]
) -> list[str]:
    """Delete every output the ledger records that the spec no longer declares (a removed
    ``[calibration]``, ``[testbed]`` or survey); returns their names."""
    declared = {name for stage in stages for name in stage.outputs(spec)}
    removed = []
    for entry in ledger.values():
        for name in (entry.get("outputs") or []) if isinstance(entry, dict) else []:
            if name not in declared and name not in removed:
                _remove(run, name)
                removed.append(name)
    return removed
