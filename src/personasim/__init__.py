"""personasim: census-grounded silicon samples, LLM personas, simulated surveys, honest scores."""

__version__ = "0.1.0"
