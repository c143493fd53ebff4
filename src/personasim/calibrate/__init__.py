"""Calibration: weights that make a persons or personas table match a real population.

Main entry points: :func:`load_targets` (census, party, csv:PATH), :func:`calibrate` (raking or
post-stratification, trimming, per-group diagnostics), :func:`attach_weights` (weights onto a
responses table for :func:`personasim.scoring.score.score`); cross-tabs are
:func:`personasim.scoring.crosstab.crosstab`. See
``docs/calibration.md``.
"""

from personasim.calibrate.methods import CalibrateOptions
from personasim.calibrate.targets import load_targets
from personasim.calibrate.weights import Calibration, attach_weights, calibrate

__all__ = [
    "CalibrateOptions",
    "Calibration",
    "attach_weights",
    "calibrate",
    "load_targets",
]
