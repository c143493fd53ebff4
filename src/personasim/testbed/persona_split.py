"""A seeded train/test split of the personas, beside the prompt split.

The paper splits prompts (seen vs held-out) but every persona appears in training. To measure
how a personalized model does on people it never saw, each persona gets a ``persona_split`` of
``train`` or ``test`` as well, and every pair carries both splits.

The split ranks personas by a hash of (seed, person_id) and sends the lowest
``round(n x share)`` to ``test``. So it is exact in size, reproducible, independent of the order
of the table, and mostly stable when personas are added (a persona moves only when the cut
point passes it).
"""

from __future__ import annotations

from collections.abc import Sequence

from personasim.personas.generate import stable_seed

PERSONA_SPLITS = ("train", "test")


def split_personas(person_ids: Sequence[str], share: float, seed: int = 0) -> dict[str, str]:
    """person_id -> ``train`` or ``test``; ``round(len(ids) x share)`` personas are ``test``."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"persona test share {share} is not in [0, 1)")
    ids = sorted(dict.fromkeys(map(str, person_ids)))
    ranked = sorted(ids, key=lambda pid: (stable_seed(seed, "persona-split", pid), pid))
    test = set(ranked[: int(round(len(ids) * share))])
    return {pid: "test" if pid in test else "train" for pid in ids}
