"""Testbed fixtures: a personas table of the ``persona`` tier built by hand (not generated, to
keep the model budget for the testbed itself), and two prompts."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from personasim.personas.generate import render_fields

#: Two hand-written PERSONA-tier profiles with the attributes the persona tier has.
PROFILES = {
    "p1": {
        "age": 71,
        "sex": "Female",
        "race": "White",
        "state": "VT",
        "education": "Bachelor's degree",
        "employment_status": "Not in labor force",
        "marital_status": "Widowed",
        "religion": "Catholic",
        "ideology": "Conservative",
        "political_views": "Republican",
        "disability": "With a disability",
        "vision_difficulty": "Yes",
        "lifestyle": "Quiet, church on Sundays, grandchildren",
        "core_values": "Faith, family, thrift",
        "defining_quirks": "Keeps every receipt",
    },
    "p2": {
        "age": 24,
        "sex": "Male",
        "race": "Asian",
        "state": "CA",
        "education": "Master's degree",
        "employment_status": "Employed",
        "marital_status": "Never married",
        "religion": "None",
        "ideology": "Liberal",
        "political_views": "Democrat",
        "disability": "No disability",
        "lifestyle": "Cycles to work, vegan, climbs on weekends",
        "core_values": "Fairness, curiosity, sustainability",
        "defining_quirks": "Names his houseplants",
    },
}


def persona_table(profiles: dict[str, dict] = PROFILES, tier: str = "persona") -> pd.DataFrame:
    """A personas table with the columns `personasim personas` writes that the testbed reads."""
    return pd.DataFrame(
        [
            {
                "person_id": pid,
                "tier": tier,
                "generator": "hand-written",
                "fields": json.dumps(f),
                "text": render_fields(f),
                "valid": True,
            }
            for pid, f in profiles.items()
        ]
    )


@pytest.fixture()
def personas() -> pd.DataFrame:
    """Two PERSONA-tier profiles."""
    return persona_table()
