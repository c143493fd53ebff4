"""KnownAnswerSimulator: a stand-in simulator whose population distributions we set.

A real simulator's population distribution is unknown, so the true distance to the truth is
unknown and interval coverage cannot be measured on it. This test double draws person-level
response rows (person key, probability vector or one-hot answer, weight) from population
distributions chosen by the test, so the estimand is known exactly: the population distribution
``p`` of each question, whose distance to the truth ``q`` the test computes itself.

Persons may belong to latent classes (``classes``): a person's class is drawn once and used for
every question, so questions answered by the same persons are correlated while each question's
population distribution stays the class-weighted mixture, known exactly. Weights are log-normal
with a chosen design effect ``1 + cv^2`` and drawn independently of the answers, so the
weighted estimand equals the unweighted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class KnownAnswerSimulator:
    """Draws persons answering questions from class-conditional answer distributions."""

    classes: list[np.ndarray]
    """Per question, a ``(n_classes, options)`` matrix of class-conditional distributions."""
    class_share: np.ndarray = field(default_factory=lambda: np.array([1.0]))
    """Population share of each latent class."""
    estimator: str = "sample"
    """``sample`` gives one-hot answers; ``logprobs`` a Dirichlet-spread probability vector
    whose mean is the class distribution."""
    concentration: float = 20.0
    """Dirichlet concentration of ``logprobs`` rows (larger: closer to the class mean)."""
    deff: float = 1.0
    """Design effect ``1 + cv^2`` of the log-normal weights (1: equal weights)."""

    def population(self, question: int) -> np.ndarray:
        """The exact population distribution of ``question`` (the estimand)."""
        return self.class_share @ self.classes[question]

    def draw(
        self, n: int, rng: np.random.Generator, prefix: str = "p"
    ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """``(keys, rows per question, weights)`` for ``n`` persons."""
        cls = rng.choice(len(self.class_share), size=n, p=self.class_share)
        keys = np.array([f"{prefix}{i}" for i in range(n)])
        rows = [self._answers(dist[cls], rng) for dist in self.classes]
        sigma2 = np.log(self.deff)
        weights = np.exp(rng.normal(0.0, np.sqrt(sigma2), size=n)) if sigma2 > 0 else np.ones(n)
        return keys, rows, weights

    def _answers(self, dists: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One row per person: one-hot sampled answer, or a Dirichlet probability vector."""
        if self.estimator == "logprobs":
            return np.vstack([rng.dirichlet(self.concentration * d + 1e-9) for d in dists])
        cum = np.cumsum(dists, axis=1)
        pick = (rng.random(len(dists))[:, None] > cum).sum(axis=1)
        pick = np.minimum(pick, dists.shape[1] - 1)
        return np.eye(dists.shape[1])[pick]


def single(p: np.ndarray, **options: object) -> KnownAnswerSimulator:
    """A one-question simulator whose population distribution is ``p``."""
    return KnownAnswerSimulator(classes=[np.asarray(p, dtype=float)[None, :]], **options)
