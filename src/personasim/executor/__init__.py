"""Executors: where the model-calling stages run (``local``: in this process; ``ray``: on Ray Data
actor pools), and the Parquet part files they write. See ``docs/scale.md``."""

from personasim.executor.base import BackendRecipe, ExecutorSpec
from personasim.executor.stages import StageRun, personas_to_parts, simulate_to_parts

__all__ = [
    "BackendRecipe",
    "ExecutorSpec",
    "StageRun",
    "personas_to_parts",
    "simulate_to_parts",
]
