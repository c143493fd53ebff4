"""Personas: text descriptions of people that a simulator answers as (tiers, generators)."""
