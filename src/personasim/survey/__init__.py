"""Surveys: the question model, loaders (own YAML/JSON, the authors' context.json, OpinionQA)."""

from personasim.survey.questions import Option, Question, Survey

__all__ = ["Option", "Question", "Survey"]
