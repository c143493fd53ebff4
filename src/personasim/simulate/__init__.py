"""Simulated survey answers: the persona-first prompt (:mod:`~personasim.simulate.prompt`), the
plan — options, tasks, option order, seeds (:mod:`~personasim.simulate.plan`), the estimators
``logprobs`` and ``sample`` (:mod:`~personasim.simulate.estimators`), the personas a simulation
reads (:mod:`~personasim.simulate.personas`) and :func:`~personasim.simulate.run.simulate`."""
