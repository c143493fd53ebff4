"""The study tree: frozen, user-written specs (pydantic) and their TOML loading
(:mod:`personasim.spec.study`). A spec composes the option models its domain packages declare."""
