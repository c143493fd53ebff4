"""The only layer that knows every stage: the stage contract
(:mod:`~personasim.pipeline.contract`), the stages and the driver that runs, resumes and records
a study (:mod:`~personasim.pipeline.driver`)."""
