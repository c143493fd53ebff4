"""Procedural parts of a PERSONA-tier profile: Big Five scores and hand-written trait lists.

Big Five. PERSONA draws five-factor profiles from BFI-2 probabilities (Soto & John, 2017); those
norms are not in ``../shared``, so personasim states its own assumption, configurable through
:class:`BigFiveSpec`: each domain score is drawn independently from a normal distribution with
mean 3.0 and standard deviation 0.7 on the BFI-2 1-5 scale, clipped to [1, 5]. Real domain scores
correlate (e.g. neuroticism with low conscientiousness); independence is a simplification.
Scores become levels as in PERSONA's example with cut points 1.8 / 2.6 / 3.4 / 4.2, which under
the default distribution gives roughly 4 % / 24 % / 43 % / 24 % / 4 % for Extremely Low, Low,
Average, High and Extremely High.

Open categories. The LLM-filled part of a profile asks for the core open attributes the person
is old enough for and ``k`` further categories of
:data:`~personasim.personas.schema.OPEN_CATEGORY_POOL`, drawn per persona from a generator seeded
by ``(seed, person_id)`` alone: a persona keeps its categories across resampling rounds.

Trait lists. Quirks, mannerisms, core values and personal-time activities are sampled from the
lists below, written for personasim (PERSONA's own hand-curated set is not published with the
paper). Everything is drawn from a NumPy generator seeded by ``(seed, person_id, round)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from personasim.personas.schema import (
    BIG_FIVE_DOMAINS,
    BIG_FIVE_LEVELS,
    OPEN_CATEGORY_POOL,
    PERSONA_CORE_OPEN,
)

CATEGORY_STREAM = 2**31 - 1
"""Third seed word of the open-category draw (never a resampling round, so the draw is
independent of the traits' draws and the same in every round)."""

QUIRKS: tuple[str, ...] = (
    "Keeps a handwritten list of every book read since high school",
    "Cannot leave the house without checking the stove twice",
    "Names every houseplant and talks to them",
    "Collects postcards from places never visited",
    "Always arrives ten minutes early, everywhere",
    "Rearranges grocery items on the belt by category",
    "Refuses to use a dishwasher",
    "Memorizes license plates out of habit",
    "Reads the last page of a novel first",
    "Saves every rubber band and twist tie",
    "Eats the same breakfast every single day",
    "Tracks the weather in a notebook",
    "Keeps a spare umbrella in every bag",
    "Hums old radio jingles when nervous",
    "Prefers handwritten letters to texts",
    "Knows the bus timetable by heart",
    "Takes photos of interesting doors",
    "Always sits facing the entrance in restaurants",
    "Cannot resist fixing crooked picture frames",
    "Keeps score in every casual game",
    "Counts steps on staircases",
    "Organizes the spice rack alphabetically",
    "Writes to-do lists for weekends",
    "Sleeps with the window open in every season",
    "Re-reads favorite childhood comics",
    "Keeps detailed receipts for years",
    "Laughs at own jokes before the punchline",
    "Never wears matching socks on purpose",
)
MANNERISMS: tuple[str, ...] = (
    "Talks with both hands",
    "Pauses for a long moment before answering",
    "Taps a pen when thinking",
    "Repeats the other person's question before answering",
    "Speaks softly, even in loud rooms",
    "Uses a lot of sports metaphors",
    "Tilts head while listening",
    "Ends sentences with a question",
    "Clears throat before saying something serious",
    "Rubs chin when skeptical",
    "Says 'to be honest' often",
    "Laughs easily and loudly",
    "Keeps eye contact for a long time",
    "Fidgets with a ring or watch",
    "Speaks quickly when excited",
    "Gives nicknames to everyone",
    "Nods constantly while others talk",
    "Quotes old movies in conversation",
    "Raises eyebrows to show surprise",
    "Crosses arms when concentrating",
    "Chooses words slowly and carefully",
    "Interrupts with enthusiasm",
    "Whistles while working",
    "Apologizes often, even when not at fault",
)
CORE_VALUES: tuple[str, ...] = (
    "Family",
    "Honesty",
    "Hard work",
    "Independence",
    "Faith",
    "Fairness",
    "Loyalty",
    "Security",
    "Freedom",
    "Tradition",
    "Curiosity",
    "Compassion",
    "Community",
    "Self-reliance",
    "Respect",
    "Education",
    "Health",
    "Achievement",
    "Creativity",
    "Thrift",
    "Adventure",
    "Justice",
    "Humility",
    "Patriotism",
    "Stability",
    "Generosity",
    "Personal responsibility",
)
PERSONAL_TIME: tuple[str, ...] = (
    "gardening",
    "reading novels",
    "fishing",
    "hunting",
    "watching football",
    "cooking",
    "baking",
    "hiking",
    "playing video games",
    "woodworking",
    "knitting",
    "volunteering at church",
    "walking the dog",
    "watching TV series",
    "listening to podcasts",
    "playing cards with friends",
    "working on cars",
    "going to the gym",
    "running",
    "cycling",
    "painting",
    "playing guitar",
    "visiting family",
    "shopping",
    "camping",
    "bird watching",
    "doing puzzles",
    "bowling",
    "golfing",
    "dancing",
    "photography",
    "following the news",
    "home repairs",
    "coaching youth sports",
    "scrolling social media",
    "attending local events",
    "quilting",
    "playing board games",
    "yoga",
    "traveling",
)


class BigFiveSpec(BaseModel):
    """The assumed distribution of BFI-2 domain scores (1-5) and the cut points of the levels."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mean: float = Field(default=3.0, ge=1.0, le=5.0)
    """Mean domain score."""
    sd: float = Field(default=0.7, gt=0.0, le=4.0)
    """Standard deviation of a domain score before clipping."""
    low: float = 1.0
    """Smallest score (scores are clipped to [low, high])."""
    high: float = 5.0
    """Largest score."""
    cuts: tuple[float, float, float, float] = (1.8, 2.6, 3.4, 4.2)
    """Upper bounds of Extremely Low, Low, Average and High (above the last: Extremely High)."""

    @model_validator(mode="after")
    def _ordered(self) -> BigFiveSpec:
        if not self.low < self.high or list(self.cuts) != sorted(self.cuts):
            raise ValueError("need low < high and increasing cut points")
        return self


class TraitCounts(BaseModel):
    """How many items of each curated list a profile gets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quirks: int = Field(default=1, ge=1, le=3)
    """Defining quirks."""
    mannerisms: int = Field(default=1, ge=1, le=3)
    """Mannerisms."""
    core_values: int = Field(default=2, ge=1, le=4)
    """Core values."""
    personal_time: int = Field(default=2, ge=1, le=4)
    """Personal-time activities."""


def rng_for(seed: int, person_id: int, round_: int = 0) -> np.random.Generator:
    """The generator of one person's procedural draw (``round_`` > 0 after a rejection)."""
    return np.random.default_rng([abs(int(seed)), abs(int(person_id)), int(round_)])


def big_five_scores(rng: np.random.Generator, spec: BigFiveSpec | None = None) -> dict[str, float]:
    """Five domain scores on the 1-5 scale, rounded to 0.1."""
    spec = spec or BigFiveSpec()
    raw = rng.normal(spec.mean, spec.sd, size=len(BIG_FIVE_DOMAINS))
    clipped = np.clip(raw, spec.low, spec.high)
    return {d: round(float(v), 1) for d, v in zip(BIG_FIVE_DOMAINS, clipped, strict=True)}


def big_five_level(score: float, spec: BigFiveSpec | None = None) -> str:
    """The level of one domain score (``Extremely Low`` ... ``Extremely High``)."""
    spec = spec or BigFiveSpec()
    return BIG_FIVE_LEVELS[int(np.searchsorted(spec.cuts, score, side="right"))]


def _pick(rng: np.random.Generator, items: tuple[str, ...], k: int) -> list[str]:
    """``k`` distinct items drawn uniformly."""
    return [items[i] for i in rng.choice(len(items), size=k, replace=False)]


def procedural_traits(
    seed: int,
    person_id: int,
    round_: int = 0,
    spec: BigFiveSpec | None = None,
    counts: TraitCounts | None = None,
) -> dict[str, Any]:
    """One person's procedural attributes: Big Five levels (and raw scores), quirks,
    mannerisms, core values, personal time."""
    rng, counts = rng_for(seed, person_id, round_), counts or TraitCounts()
    scores = big_five_scores(rng, spec)
    return {
        "big_five_scores": {d: big_five_level(s, spec) for d, s in scores.items()},
        "big_five_raw": scores,
        "defining_quirks": "; ".join(_pick(rng, QUIRKS, counts.quirks)),
        "mannerisms": "; ".join(_pick(rng, MANNERISMS, counts.mannerisms)),
        "core_values": ", ".join(_pick(rng, CORE_VALUES, counts.core_values)),
        "personal_time": "Spends free time "
        + " and ".join(_pick(rng, PERSONAL_TIME, counts.personal_time)),
    }


def big_five_text(levels: dict[str, str]) -> str:
    """``Openness: High, Conscientiousness: Low, ...`` (PERSONA's rendering)."""
    return ", ".join(f"{d.capitalize()}: {lvl}" for d, lvl in levels.items())


def open_keys(seed: int, person_id: int, age: int | None, k: int) -> tuple[str, ...]:
    """The open attributes one persona's fill asks for: the core ones the person is old enough
    for, then ``k`` categories drawn from those of the pool that fit the age (pool order)."""
    years = 40 if age is None else int(age)
    core = [key for key, youngest in PERSONA_CORE_OPEN.items() if years >= youngest]
    fit = [key for key, c in OPEN_CATEGORY_POOL.items() if c.min_age <= years <= c.max_age]
    rng = np.random.default_rng([abs(int(seed)), abs(int(person_id)), CATEGORY_STREAM])
    picked = set(_pick(rng, tuple(fit), min(k, len(fit)))) if k else set()
    return (*core, *(key for key in fit if key in picked))
