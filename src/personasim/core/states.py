"""The 50 states and DC: postal code, FIPS code and name, in one place.

Every module that needs a state table imports it from here (census sampling and fidelity, the
election truth, persona rendering, OpinionQA regions, the report's maps).
"""

from __future__ import annotations

from personasim.core.errors import DataError

#: USPS code -> state FIPS code (50 states and DC).
STATE_FIPS: dict[str, int] = {
    "AL": 1,
    "AK": 2,
    "AZ": 4,
    "AR": 5,
    "CA": 6,
    "CO": 8,
    "CT": 9,
    "DE": 10,
    "DC": 11,
    "FL": 12,
    "GA": 13,
    "HI": 15,
    "ID": 16,
    "IL": 17,
    "IN": 18,
    "IA": 19,
    "KS": 20,
    "KY": 21,
    "LA": 22,
    "ME": 23,
    "MD": 24,
    "MA": 25,
    "MI": 26,
    "MN": 27,
    "MS": 28,
    "MO": 29,
    "MT": 30,
    "NE": 31,
    "NV": 32,
    "NH": 33,
    "NJ": 34,
    "NM": 35,
    "NY": 36,
    "NC": 37,
    "ND": 38,
    "OH": 39,
    "OK": 40,
    "OR": 41,
    "PA": 42,
    "RI": 44,
    "SC": 45,
    "SD": 46,
    "TN": 47,
    "TX": 48,
    "UT": 49,
    "VT": 50,
    "VA": 51,
    "WA": 53,
    "WV": 54,
    "WI": 55,
    "WY": 56,
}
FIPS_STATE: dict[int, str] = {v: k for k, v in STATE_FIPS.items()}
"""State FIPS code -> USPS code."""

#: USPS code -> state name.
STATE_NAMES: dict[str, str] = {
    "AL": "Alabama",
    "AK": "Alaska",
    "AZ": "Arizona",
    "AR": "Arkansas",
    "CA": "California",
    "CO": "Colorado",
    "CT": "Connecticut",
    "DE": "Delaware",
    "DC": "District of Columbia",
    "FL": "Florida",
    "GA": "Georgia",
    "HI": "Hawaii",
    "ID": "Idaho",
    "IL": "Illinois",
    "IN": "Indiana",
    "IA": "Iowa",
    "KS": "Kansas",
    "KY": "Kentucky",
    "LA": "Louisiana",
    "ME": "Maine",
    "MD": "Maryland",
    "MA": "Massachusetts",
    "MI": "Michigan",
    "MN": "Minnesota",
    "MS": "Mississippi",
    "MO": "Missouri",
    "MT": "Montana",
    "NE": "Nebraska",
    "NV": "Nevada",
    "NH": "New Hampshire",
    "NJ": "New Jersey",
    "NM": "New Mexico",
    "NY": "New York",
    "NC": "North Carolina",
    "ND": "North Dakota",
    "OH": "Ohio",
    "OK": "Oklahoma",
    "OR": "Oregon",
    "PA": "Pennsylvania",
    "RI": "Rhode Island",
    "SC": "South Carolina",
    "SD": "South Dakota",
    "TN": "Tennessee",
    "TX": "Texas",
    "UT": "Utah",
    "VT": "Vermont",
    "VA": "Virginia",
    "WA": "Washington",
    "WV": "West Virginia",
    "WI": "Wisconsin",
    "WY": "Wyoming",
}
_BY_NAME = {name.casefold(): code for code, name in STATE_NAMES.items()}


def state_code(value: object) -> str:
    """Postal code for a state given as a code (``CA``), a name (``California``) or FIPS (6)."""
    text = str(value).strip()
    if text.upper() in STATE_FIPS:
        return text.upper()
    if text.casefold() in _BY_NAME:
        return _BY_NAME[text.casefold()]
    if text.isdigit() and int(text) in FIPS_STATE:
        return FIPS_STATE[int(text)]
    raise DataError(
        f"unknown state {value!r}", hint="use a postal code such as 'CA', a name or FIPS"
    )


def state_name(value: object) -> str:
    """The name of a state given as a code, name or FIPS; the value itself when unknown."""
    try:
        return STATE_NAMES[state_code(value)]
    except DataError:
        return str(value)
