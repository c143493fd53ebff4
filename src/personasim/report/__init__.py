"""The self-contained HTML report of a run directory (see :func:`build_report`)."""

from personasim.report.build import build_report

__all__ = ["build_report"]
