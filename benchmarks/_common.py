"""Shared set-up for the benchmarks: the real sample when ../shared is present, else the synthetic default."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from casa_sched.contract.cluster import SimParams
from casa_sched.contract.forecast import Forecast
from casa_sched.contract.plan import Container, Plan
from casa_sched.settings import CasaSettings
from casa_sched.traces import Workload, load_workload
from casa_sched.traces.synthetic import synthetic_workload

# The real data lives in ../shared/data beside the repository (absent from a fresh clone).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMPLE = SHARED_DATA / "azure-functions-2019-sample500"


def sample_or_synthetic(intensity: float, seed: int = 1, trace_dir: Path | None = None) -> Workload:
    """The 500-function Azure sample (``trace_dir``, else :data:`SAMPLE`) scaled by ``intensity``
    (the synthetic default if it is absent)."""
    sample = trace_dir or SAMPLE
    wl = load_workload(sample) if sample.is_dir() else synthetic_workload(seed=seed)
    return wl.scaled(intensity, seed=seed)


def forecast_of(wl: Workload, epoch: int, minutes: int = 15) -> Forecast:
    m0 = epoch * minutes
    return Forecast(
        epoch, epoch * 60.0 * minutes, wl.function_ids, wl.counts[:, m0 : m0 + minutes].astype(np.float64),
        wl.t_ave_s, wl.memory_mb,
    )  # fmt: skip


def random_plan(
    fc: Forecast, params: SimParams, n_nodes: int, rng: np.random.Generator, settings: CasaSettings | None = None
) -> Plan:
    """A feasible plan: a random share of active functions, in random order, each sized to its
    forecast peak concurrency times a random headroom, until a random share of the cluster is used."""
    cores = (settings or CasaSettings()).cluster.cores_per_node
    share = rng.uniform(0.2, 1.0)
    headroom = rng.uniform(0.5, 2.0)
    budget_cores = rng.uniform(0.3, 1.0) * cores * n_nodes
    demand = fc.counts.max(axis=1) * fc.t_ave_s / 60.0 * headroom
    active = np.flatnonzero(fc.active())
    order = rng.permutation(active)[: max(1, int(share * active.size))]
    free = np.full(n_nodes, float(cores))
    containers: dict[str, tuple[Container, ...]] = {}
    for i in order:
        units = max(1, math.ceil(demand[i] / params.slots_per_unit))
        if cores * n_nodes - free.sum() + units * params.base_cpu_cores > budget_cores:
            continue
        cs: list[Container] = []
        while units > 0:
            j = int(rng.integers(0, n_nodes)) if rng.random() < 0.5 else int(np.argmax(free))
            if free[j] < params.base_cpu_cores:
                j = int(np.argmax(free))
                if free[j] < params.base_cpu_cores:
                    break
            k = min(units, params.max_container_size, int(free[j] // params.base_cpu_cores))
            cs.append(Container(f"node-{j}", k))
            free[j] -= k * params.base_cpu_cores
            units -= k
        if cs:
            containers[fc.function_ids[i]] = tuple(cs)
    return Plan(epoch=fc.epoch, containers=containers)
