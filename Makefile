# Developer entry points. Everything runs from a virtual environment in
# $(VENV), created with $(PYTHON) when it is missing:
#
#   make run     install the project, migrate and seed the example app, serve it
#   make test    lint, type-check and run the test suite (needs PostgreSQL and Redis)
#   make coverage   the same suite, measuring flaskstack's coverage
#   make docs    build the documentation, warnings as errors
#
# Every install takes its versions from requirements/lock.txt (`make lock` refreshes it),
# so a new upstream release never changes what `make test` runs on. Two more runs of the
# core tests check the ends of the range, each in an environment of its own:
#   make test-minimums   every runtime dependency at its declared lower bound
#   make test-latest     the newest releases; a failure is reported, not an error (STRICT=1)
#
# Another interpreter gets its own environment:
#   make pytest PYTHON=python3.10 VENV=.venv-3.10

PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=
MINIMUMS_VENV ?= .venv-minimums
LATEST_VENV ?= .venv-latest
STRICT ?=
# xdist workers of the core test runs. Most tests wait on PostgreSQL, Redis or a
# subprocess, so more workers than cores keep the cores busy. `make test` runs
# SUITE_WORKERS: its share also starts gunicorn stacks and chromium, whose readiness
# checks must answer within seconds.
WORKERS ?= 4
SUITE_WORKERS ?= 3
# Coverage options of `make pytest` and `make test-core` (`COV=` runs them without it).
# Coverage adds about half to the CPU time of in-process tests, so `make test` (and CI)
# runs without it and `make coverage` runs the same suite with it.
COV ?= --cov=flaskstack --cov-report=term
SUITE_COV ?=
# uv's executable, if installs should go through it (`make test UV=uv`; CI does): the
# same constraints and versions as pip, installed in seconds rather than a minute.
UV ?=

# The lock: every package of the dev extra, pinned, with markers for Python 3.10 to 3.13.
LOCK := requirements/lock.txt
# Each runtime dependency at its declared lower bound (tests/test_dependency_bounds.py).
MINIMUMS := requirements/minimums.txt
# The core tests: everything but the process-level suites (gunicorn under load, the
# RealWorld collection, security scans, the browser tests), the benchmarks and the documentation build.
CORE_TESTS := -n $(WORKERS) --ignore=tests/reliability --ignore=tests/security --ignore=tests/realworld \
	--ignore=tests/browser --ignore=tests/test_benchmarks.py --ignore=tests/test_benchmark_jobs.py \
	--ignore=tests/test_benchmark_instructions.py \
	--ignore=tests/test_docs.py --ignore=tests/test_quickstart.py

BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
# `$(call INSTALL,<venv>) <pip install arguments>`: pip, or uv when UV is set.
INSTALL = $(if $(UV),$(UV) pip install -q --python $(1)/bin/python,$(1)/bin/python -m pip \
	--disable-pip-version-check install -q)
# The newest releases of everything: pip needs the eager strategy, uv upgrades everything.
UPGRADE_ALL = $(if $(UV),--upgrade,--upgrade --upgrade-strategy eager)
FLASK := $(BIN)/flask --app example:create_app
PYTEST := $(BIN)/python -m pytest $(COV) --durations=15 $(PYTEST_ARGS)
# `make test` runs the suite on $(SUITE_WORKERS) xdist workers, except the suites that put
# gunicorn under load and time its recovery: they run alone afterwards, so the
# rest of the suite does not take their CPU. Coverage adds up over both runs.
SOLO_TESTS := tests/reliability tests/test_benchmarks.py tests/test_benchmark_jobs.py
PYTEST_PARALLEL = $(BIN)/python -m pytest -n $(SUITE_WORKERS) \
	$(if $(SUITE_COV),--cov=flaskstack --cov-report=) --durations=15 \
	$(addprefix --ignore=,$(SOLO_TESTS)) $(PYTEST_ARGS)
PYTEST_SOLO = $(BIN)/python -m pytest $(if $(SUITE_COV),--cov=flaskstack --cov-append \
	--cov-report=term) --durations=15 $(PYTEST_ARGS) $(SOLO_TESTS)

# Stamps record what was installed, and are redone when pyproject.toml or the lock changes.
BASE_STAMP := $(VENV)/.installed-base
DEV_STAMP := $(VENV)/.installed-dev

.DEFAULT_GOAL := help

.PHONY: help run test coverage lint typecheck pytest test-core test-minimums test-latest lock docs dist \
	bench bench-quick clean

help:
	@echo "make run     install, migrate and seed the example app, then serve it on http://$(HOST):$(PORT)"
	@echo "make test    ruff, mypy and pytest (needs the local PostgreSQL and Redis)"
	@echo "make coverage  the same, measuring flaskstack's coverage"
	@echo "make pytest  the test suite only"
	@echo "make test-minimums  the core tests on the declared minimum versions (in $(MINIMUMS_VENV))"
	@echo "make test-latest    the core tests on the newest releases (in $(LATEST_VENV); STRICT=1 fails)"
	@echo "make lock    refresh $(LOCK) to the newest releases"
	@echo "make docs    build the documentation into docs/_build/html (warnings are errors)"
	@echo "make bench   flaskstack vs hand-wired, bare Flask and Django (about 20 minutes)"
	@echo "make dist    build the sdist and wheel into dist/"
	@echo "make clean   remove the virtual environment, build output and caches"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BASE_STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(call INSTALL,$(VENV)) -c $(LOCK) -e '.[two-factor]'
	@touch $@

$(DEV_STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(call INSTALL,$(VENV)) -c $(LOCK) -e '.[dev]'
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

coverage: $(DEV_STAMP)
	$(MAKE) test SUITE_COV=1

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

pytest: $(DEV_STAMP)
	$(PYTEST)

# The core tests on the lock (CI runs them on Python 3.13 this way).
test-core: $(DEV_STAMP)
	$(PYTEST) $(CORE_TESTS)

# The runtime dependencies at the versions of $(MINIMUMS), everything else as locked.
test-minimums:
	@test -x $(MINIMUMS_VENV)/bin/python || $(PYTHON) -m venv $(MINIMUMS_VENV)
	$(MINIMUMS_VENV)/bin/python requirements/pins.py constraints $(LOCK) $(MINIMUMS) \
		> $(MINIMUMS_VENV)/constraints.txt
	$(call INSTALL,$(MINIMUMS_VENV)) -c $(MINIMUMS_VENV)/constraints.txt -e '.[dev]'
	$(MINIMUMS_VENV)/bin/python -m pip --disable-pip-version-check check
	$(MINIMUMS_VENV)/bin/python requirements/pins.py diff $(LOCK)
	$(MINIMUMS_VENV)/bin/python -m pytest --durations=15 $(CORE_TESTS) $(PYTEST_ARGS)

# The newest releases, without the lock: which versions differ from it, then the core
# tests. A failure prints a banner and, unless STRICT=1, exits 0: the lock still decides
# what lands. $(LATEST_VENV)/summary.txt keeps the outcome (CI prints it last).
test-latest:
	@test -x $(LATEST_VENV)/bin/python || $(PYTHON) -m venv $(LATEST_VENV)
	@py=$(LATEST_VENV)/bin/python; summary=$(LATEST_VENV)/summary.txt; log=$(LATEST_VENV)/pytest.log; \
	rm -f $$summary $$log $(LATEST_VENV)/status; status=0; \
	$(call INSTALL,$(LATEST_VENV)) $(UPGRADE_ALL) -e '.[dev]' || status=$$?; \
	if [ $$status -ne 0 ]; then \
		echo "the newest releases could not be installed (exit status $$status)" > $$summary; \
	else \
		$$py requirements/pins.py diff $(LOCK) > $$summary; cat $$summary; \
		{ $$py -m pytest --durations=15 $(CORE_TESTS) $(PYTEST_ARGS); echo $$? > $(LATEST_VENV)/status; } \
			2>&1 | tee $$log; \
		status=$$(cat $(LATEST_VENV)/status); \
		if grep -q 'short test summary info' $$log; then \
			sed -n '/short test summary info/,$$p' $$log | tail -n 60 >> $$summary; \
		else tail -n 1 $$log >> $$summary; fi; \
	fi; \
	if [ $$status -eq 0 ]; then \
		echo "newest releases: the core tests pass" >> $$summary; \
		echo; echo "newest releases: the core tests pass"; \
	else \
		{ echo; echo "################################################################"; \
		  echo "#  NEWEST RELEASES FAIL — the lock still passes; see above"; \
		  echo "#  (make test-latest, exit status $$status)"; \
		  echo "################################################################"; } \
			| tee -a $$summary; \
		if [ "$(STRICT)" = 1 ]; then exit $$status; fi; \
	fi

# Refresh the lock to the newest releases (uv resolves once for every supported Python,
# writing markers where versions differ), then `make test` installs from it.
lock: | $(BIN)/python
	$(PIP) install -q 'uv>=0.9'
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.10 \
		--upgrade --custom-compile-command 'make lock' --quiet -o $(LOCK)

docs: $(DEV_STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/run.py

bench-quick: $(DEV_STAMP)
	$(BIN)/python benchmarks/run.py --quick

dist: $(DEV_STAMP)
	$(BIN)/python -m build --outdir dist .

clean:
	rm -rf $(VENV) $(MINIMUMS_VENV) $(LATEST_VENV) .venv-uv build dist docs/_build .coverage htmlcov .mypy_cache .ruff_cache .pytest_cache
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
