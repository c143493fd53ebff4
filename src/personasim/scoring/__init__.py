"""Scores against ground truth: the streaming input (:mod:`~personasim.scoring.stream`), the
distances (:mod:`~personasim.scoring.metrics`), the scorer (:mod:`~personasim.scoring.score`)
and cross-tabs (:mod:`~personasim.scoring.crosstab`)."""
