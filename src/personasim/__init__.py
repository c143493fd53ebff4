"""personasim: census-grounded silicon samples, LLM personas, simulated surveys, honest scores.

The Python API in four names, each imported on first use (PEP 562) so that ``import personasim``
stays cheap:

- :func:`load_study` — a built-in study by name (``"default"``, ``"tiny"``) or a STUDY.toml path;
- :func:`run_study` — ``run_study(spec, out_dir)`` runs (or resumes) it, returns a
  :class:`RunResult`;
- :func:`open_run` — the :class:`RunResult` of an existing run directory;
- :meth:`RunResult.table` — a run's table as a DataFrame; :meth:`RunResult.table_names` lists them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "load_study": "personasim.spec.study",
    "run_study": "personasim.pipeline.driver",
    "open_run": "personasim.pipeline.driver",
    "RunResult": "personasim.pipeline.driver",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    """Import the module defining ``name`` when it is first asked for."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    """The module's names, the lazy ones included."""
    return sorted({*globals(), *_EXPORTS})
