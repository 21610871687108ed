# Two entry points (see README.md):
#   make run        installs into .venv and runs the main job on its embedded defaults
#   make test       installs everything the tests need, then ruff, mypy, import contracts, pytest
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv run test lint typecheck contracts pytest system-deps bench k8s-bins kwok-bin

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

venv: $(BIN)/activate
	$(BIN)/pip install --quiet -e '.[dev]'

run: $(BIN)/activate
	$(BIN)/pip install --quiet -e .
	$(BIN)/casa simulate $(ARGS)

system-deps:
	bash .ci/system-deps.sh

# Real Kubernetes control plane for the k8s-marked tests, built from the Go module proxy and
# cached by version under CASA_K8S_CACHE (default ~/.cache/casa-sched/k8s; a warm cache returns at once;
# KUBEBUILDER_ASSETS with all binaries skips the build). Cold: ~6 min on 2 cores.
k8s-bins:
	bash hack/build-k8s.sh

# KWOK (fake kubelets: nodes heartbeat Ready, bound pods run, in-place resizes are reported) for
# the k8s tests, `go install`ed from the module proxy and cached under CASA_KWOK_CACHE (default
# ~/.cache/casa-sched/kwok/<version>/bin; CASA_KWOK_BIN or KUBEBUILDER_ASSETS/kwok skip the build).
kwok-bin:
	bash hack/build-kwok.sh

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy casa_sched profiler/casa_profiler stress/casa_stress tests benchmarks

contracts: venv
	$(BIN)/lint-imports

pytest: venv system-deps k8s-bins kwok-bin
	$(BIN)/pytest $(PYTEST_ARGS)

test: venv system-deps k8s-bins kwok-bin
	$(BIN)/ruff check .
	$(BIN)/mypy casa_sched profiler/casa_profiler stress/casa_stress tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python -m benchmarks.simulator_bench
	$(BIN)/python -m benchmarks.estimator_accuracy
	$(BIN)/python -m benchmarks.planner_bench
