# Developer entry points. Everything runs from a virtual environment in
# $(VENV), created with $(PYTHON) when it is missing:
#
#   make run     install the project, migrate and seed the example app, serve it
#   make test    lint, type-check and run the test suite (needs PostgreSQL and Redis)
#   make docs    build the documentation, warnings as errors
#
# Another interpreter gets its own environment:
#   make pytest PYTHON=python3.10 VENV=.venv-3.10

PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=

BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
FLASK := $(BIN)/flask --app example:create_app
PYTEST := $(BIN)/python -m pytest --cov=flaskstack --cov-report=term --durations=15 $(PYTEST_ARGS)
# `make test` runs the suite on two xdist workers, except the suites that put
# gunicorn under load and time its recovery: they run alone afterwards, so the
# rest of the suite does not take their CPU. Coverage adds up over both runs.
SOLO_TESTS := tests/reliability tests/test_benchmarks.py
PYTEST_PARALLEL := $(BIN)/python -m pytest -n 2 --cov=flaskstack --cov-report= --durations=15 \
	$(addprefix --ignore=,$(SOLO_TESTS)) $(PYTEST_ARGS)
PYTEST_SOLO := $(BIN)/python -m pytest --cov=flaskstack --cov-append --cov-report=term \
	--durations=15 $(PYTEST_ARGS) $(SOLO_TESTS)

# Stamps record what was installed, and are redone when pyproject.toml changes.
BASE_STAMP := $(VENV)/.installed-base
DEV_STAMP := $(VENV)/.installed-dev

.DEFAULT_GOAL := help

.PHONY: help run test lint typecheck pytest docs dist bench bench-quick clean

help:
	@echo "make run     install, migrate and seed the example app, then serve it on http://$(HOST):$(PORT)"
	@echo "make test    ruff, mypy and pytest with coverage (needs the local PostgreSQL and Redis)"
	@echo "make pytest  the test suite only"
	@echo "make docs    build the documentation into docs/_build/html (warnings are errors)"
	@echo "make bench   flaskstack vs hand-wired, bare Flask and Django (about 20 minutes)"
	@echo "make dist    build the sdist and wheel into dist/"
	@echo "make clean   remove the virtual environment, build output and caches"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BASE_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install -q -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install -q -e '.[dev]'
	@touch $@ $(BASE_STAMP)

run: $(BASE_STAMP)
	$(FLASK) db upgrade
	$(FLASK) example seed
	@echo "Serving the example app at http://$(HOST):$(PORT)/ (Ctrl+C stops it)"
	$(FLASK) run --host $(HOST) --port $(PORT)

test: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(PYTEST_PARALLEL)
	$(PYTEST_SOLO)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

pytest: $(DEV_STAMP)
	$(PYTEST)

docs: $(DEV_STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/run.py

bench-quick: $(DEV_STAMP)
	$(BIN)/python benchmarks/run.py --quick

dist: $(DEV_STAMP)
	$(BIN)/python -m build --outdir dist .

clean:
	rm -rf $(VENV) build dist docs/_build .coverage htmlcov .mypy_cache .ruff_cache .pytest_cache
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
