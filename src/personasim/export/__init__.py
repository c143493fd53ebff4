"""Exports in the formats users load: Hugging Face dataset folders, Parquet, JSONL
(:mod:`~personasim.export.tables`) and TRL preference rows (:mod:`~personasim.export.trl`)."""
