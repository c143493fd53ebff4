"""One module per pipeline stage, each declaring its own stage (``STAGE``, a
:class:`~personasim.pipeline.contract.Stage`) next to the function that computes it; the driver
(:data:`personasim.pipeline.driver.STAGE_LIST`) runs them in order. A stage's ``code`` names the
packages whose source computes its outputs, its own module included, so a change in either makes
the stage stale. The LLM layer is left out on purpose: a model's answers are keyed by the request
in the cache, and a backend change that alters requests shows up as cache misses."""
