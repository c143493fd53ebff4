"""Simulated survey answers: the persona-first prompt, the plan (option order, seeds) and the
estimators (``logprobs``, ``sample``) of :mod:`personasim.simulate.run`."""
