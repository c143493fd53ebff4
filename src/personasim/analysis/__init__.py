"""Persona diagnostics: text statistics (sentiment, length, vocabulary), flags for degenerate
text, word clouds and the drift of LLM-imputed attributes away from the census values of the
same persons.

The names below are imported on first use (PEP 562), so that importing one submodule (e.g.
``personasim.analysis.fidelity``) does not load the text tools (textblob, wordcloud).
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "imputation_drift": "personasim.analysis.drift",
    "quality_flags": "personasim.personas.quality",
    "quality_summary": "personasim.personas.quality",
    "sentiment_summary": "personasim.analysis.text",
    "text_stats": "personasim.analysis.text",
    "word_cloud_png": "personasim.analysis.text",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the submodule defining ``name`` when it is first asked for."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
