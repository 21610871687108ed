# Two entry points (see README.md):
#   make run        installs into .venv and runs the main job on its embedded defaults
#   make test       installs everything the tests need, then ruff, mypy, import contracts, pytest
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv run test lint typecheck contracts pytest system-deps bench

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

venv: $(BIN)/activate
	$(BIN)/pip install --quiet -e '.[dev]'

run: $(BIN)/activate
	$(BIN)/pip install --quiet -e .
	$(BIN)/casa models power $(ARGS)

system-deps:
	bash .ci/system-deps.sh

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy casa_sched profiler/casa_profiler stress/casa_stress tests benchmarks

contracts: venv
	$(BIN)/lint-imports

pytest: venv system-deps
	$(BIN)/pytest $(PYTEST_ARGS)

test: venv system-deps
	$(BIN)/ruff check .
	$(BIN)/mypy casa_sched profiler/casa_profiler stress/casa_stress tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python -m benchmarks.run_all
