"""Every ``personasim`` command (click): thin wrappers that parse options, call the Python API
and turn errors into one line. The entry point is :func:`personasim.cli.main.main`."""
