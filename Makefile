# Two entry points (see README.md):
#   make run        installs into .venv and runs the main job on its embedded defaults
#   make test       installs everything the tests need, then ruff, mypy, import contracts, pytest
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv run test lint typecheck contracts pytest system-deps bench k8s-bins kwok-bin knative-bins

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

# Knative Serving's controller and autoscaler (release 1.15.2) and the CRDs of 1.15.2 and 1.24.0,
# from the Go module proxy, cached under CASA_KNATIVE_CACHE (default ~/.cache/casa-sched/knative;
# CASA_KNATIVE_BIN with both binaries skips the build). Cold: ~5 CPU-minutes, ~1.5 GB of modules.
knative-bins:
	bash hack/build-knative.sh
	CASA_KNATIVE_VERSION=v0.51.0 bash hack/build-knative.sh --config-only

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy casa_sched profiler/casa_profiler stress/casa_stress tests benchmarks

contracts: venv
	$(BIN)/lint-imports

pytest: venv system-deps k8s-bins kwok-bin knative-bins
	$(BIN)/pytest $(PYTEST_ARGS)

test: venv system-deps k8s-bins kwok-bin knative-bins
	$(BIN)/ruff check .
	$(BIN)/mypy casa_sched profiler/casa_profiler stress/casa_stress tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python -m benchmarks.simulator_bench
	$(BIN)/python -m benchmarks.estimator_accuracy
	$(BIN)/python -m benchmarks.planner_bench
