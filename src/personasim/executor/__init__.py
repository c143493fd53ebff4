"""Executors: generic batch runners for the model-calling jobs (``local``: in this process;
``ray``: on Ray Data actor pools). The jobs themselves (personas, simulate) live in
:mod:`personasim.pipeline.jobs`; the part files they commit in :mod:`personasim.core.parts`. See
``docs/scale.md``."""

from personasim.executor.base import BackendRecipe, ExecutorSpec

__all__ = ["BackendRecipe", "ExecutorSpec"]
