"""How a group is calibrated: the options shared by ``personasim calibrate`` and a study's
``[calibration]`` section (:class:`personasim.spec.study.CalibrationSection` extends this model),
in a
module of its own so the spec imports no calibration code."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CalibrateOptions(BaseModel):
    """How to calibrate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["rake", "poststratify"] = "rake"
    """Raking over every target variable, or post-stratification on one variable."""
    max_iter: int = Field(200, ge=1, le=100_000)
    """Most raking sweeps (at most 100,000: raking that has not converged by then will not)."""
    tol: float = Field(1e-6, ge=1e-12)
    """Raking stops when every level's weighted total is within this relative error (at least
    1e-12: double precision cannot meet a smaller one)."""
    trim: float | None = Field(None, gt=1)
    """Cap weights at this multiple of the mean weight (None: no cap)."""
    trim_percentile: float | None = Field(None, gt=0, lt=100)
    """Instead of ``trim``: cap weights at this percentile of the weights."""
    trim_rounds: int = Field(1, ge=1, le=50)
    """Rake-then-trim rounds (raking only); the last step is always a trim."""

    @model_validator(mode="after")
    def _one_cap(self) -> CalibrateOptions:
        if self.trim is not None and self.trim_percentile is not None:
            raise ValueError("give trim or trim_percentile, not both")
        return self
