"""Persona diagnostics: text statistics (sentiment, length, vocabulary), word clouds and the
drift of LLM-imputed attributes away from the census values of the same persons."""

from personasim.analysis.drift import imputation_drift
from personasim.analysis.text import sentiment_summary, text_stats, word_cloud_png

__all__ = ["imputation_drift", "sentiment_summary", "text_stats", "word_cloud_png"]
