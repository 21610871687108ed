"""Frozen inputs of the simulator: the cluster, the model parameters, signals and requests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from casa_sched.models.accounting import WaterFactors
from casa_sched.models.power import DEFAULT_NODE_CURVE, PowerCurve
from casa_sched.settings import CasaSettings

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class SimulationError(ValueError):
    """Inputs the simulator cannot run with (an infeasible plan, misaligned signals, ...)."""


@dataclass(frozen=True)
class NodeSpec:
    """One compute node: capacity, power curve (eq. 2) and its distance to image storage (eq. 8)."""

    name: str
    cores: int
    memory_mb: float
    curve: PowerCurve
    switch_hops: int


@dataclass(frozen=True)
class ClusterSpec:
    """The N nodes plus the cluster-wide parts of eqs. (1) and (8)."""

    nodes: tuple[NodeSpec, ...]
    storage_power_w: float = 150.0
    network_power_w: float = 100.0
    image_bandwidth_mb_per_s: float = 125.0
    switch_delay_s: float = 0.001
    sleep_empty_nodes: bool = False
    sleep_power_w: float = 10.0
    wake_latency_s: float = 60.0

    def __post_init__(self) -> None:
        names = [n.name for n in self.nodes]
        if not names:
            raise SimulationError("a cluster needs at least one node")
        if len(set(names)) != len(names):
            raise SimulationError(f"node names must be unique, got {names}")

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    @classmethod
    def uniform(
        cls, n_nodes: int, settings: CasaSettings | None = None, curve: PowerCurve = DEFAULT_NODE_CURVE
    ) -> ClusterSpec:
        """``n_nodes`` identical nodes named ``node-0..``, parameters from ``settings``."""
        s = (settings or CasaSettings()).cluster
        hops = s.switch_hops
        nodes = tuple(
            NodeSpec(f"node-{i}", s.cores_per_node, s.memory_mb_per_node, curve, hops[i % len(hops)])
            for i in range(n_nodes)
        )
        return cls(
            nodes=nodes,
            storage_power_w=s.storage_power_w,
            network_power_w=s.network_power_w,
            image_bandwidth_mb_per_s=s.image_bandwidth_mb_per_s,
            switch_delay_s=s.switch_delay_s,
            sleep_empty_nodes=s.sleep_empty_nodes,
            sleep_power_w=s.sleep_power_w,
            wake_latency_s=s.wake_latency_s,
        )


@dataclass(frozen=True)
class SimParams:
    """Workload, SLO and container-overhead parameters (DESIGN §3; defaults from settings)."""

    request_cpu_cores: float = 0.1
    laxity: float = 10.0
    base_cpu_cores: float = 2.0
    base_memory_mb: float = 150.0
    image_mb: float = 300.0
    max_container_size: int = 32
    utilisation: Literal["busy", "allocated"] = "busy"
    starting_cores: float = 1.0
    idle_cores: float = 0.05
    stopping_cores: float = 0.5
    shutdown_s: float = 15.0
    epoch_s: float = 900.0
    autoscale: bool = True
    autoscale_interval_s: float = 10.0
    keepalive_s: float = 60.0

    def __post_init__(self) -> None:
        if self.request_cpu_cores <= 0 or self.request_cpu_cores > self.base_cpu_cores:
            raise SimulationError(
                f"request_cpu_cores must be in (0, base_cpu_cores={self.base_cpu_cores}], got {self.request_cpu_cores}"
            )
        if self.autoscale_interval_s <= 0 or self.epoch_s <= 0:
            raise SimulationError("epoch_s and autoscale_interval_s must be > 0 s")

    @property
    def slots_per_unit(self) -> int:
        """Concurrent requests one base unit runs: ``floor(2 cores / 0.1 core) = 20`` by default."""
        return max(1, math.floor(self.base_cpu_cores / self.request_cpu_cores + 1e-9))

    @classmethod
    def from_settings(cls, settings: CasaSettings, **overrides: object) -> SimParams:
        w, o = settings.workload, settings.overheads
        values: dict[str, object] = {
            "request_cpu_cores": w.request_cpu_cores,
            "laxity": settings.slo.laxity,
            "base_cpu_cores": w.base_cpu_cores,
            "base_memory_mb": w.base_memory_mb,
            "image_mb": w.image_mb,
            "max_container_size": w.max_container_size,
            "utilisation": w.utilisation,
            "starting_cores": o.starting_cores,
            "idle_cores": o.idle_cores,
            "stopping_cores": o.stopping_cores,
            "shutdown_s": o.shutdown_s,
            "epoch_s": w.epoch_s,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class HourlySignals:
    """CI_h, EP_h and E_t for simulation hours 0, 1, … (hour h = ``[3600·h, 3600·(h+1))`` s)."""

    ci_g_per_kwh: FloatArray
    price_usd_per_kwh: FloatArray
    cooling_factor: FloatArray
    water: WaterFactors = field(default_factory=lambda: WaterFactors(4.5, 0.5, 0.0015))

    def __post_init__(self) -> None:
        shapes = {self.ci_g_per_kwh.shape, self.price_usd_per_kwh.shape, self.cooling_factor.shape}
        if len(shapes) != 1 or self.ci_g_per_kwh.ndim != 1:
            raise SimulationError(f"hourly signals must be 1-D arrays of one length, got shapes {shapes}")
        for name in ("ci_g_per_kwh", "price_usd_per_kwh", "cooling_factor"):
            arr = getattr(self, name)
            if not np.all(np.isfinite(arr)):
                raise SimulationError(f"{name} must be finite in every hour")
            if name != "price_usd_per_kwh" and np.any(arr < 0):  # wholesale prices can be negative
                raise SimulationError(f"{name} must be >= 0 in every hour")

    @property
    def hours(self) -> int:
        return int(self.ci_g_per_kwh.size)

    @classmethod
    def constant(
        cls,
        hours: int,
        ci_g_per_kwh: float,
        price_usd_per_kwh: float,
        cooling_factor: float,
        water: WaterFactors | None = None,
    ) -> HourlySignals:
        return cls(
            np.full(hours, ci_g_per_kwh),
            np.full(hours, price_usd_per_kwh),
            np.full(hours, cooling_factor),
            water or WaterFactors(0.0, 0.0, 0.0),
        )


@dataclass(frozen=True)
class EpochRequests:
    """The requests of one epoch, grouped by function.

    ``arrivals_s[i]`` are function i's arrival times in seconds since the simulation start
    (sorted); ``t_ave_s[i]`` its average execution time.
    """

    epoch: int
    start_s: float
    function_ids: tuple[str, ...]
    t_ave_s: FloatArray
    arrivals_s: tuple[FloatArray, ...]

    def __post_init__(self) -> None:
        if not (len(self.function_ids) == self.t_ave_s.size == len(self.arrivals_s)):
            raise SimulationError("function_ids, t_ave_s and arrivals_s must have one entry per function")
        if np.any(self.t_ave_s <= 0):
            raise SimulationError("every T_ave must be > 0 s")

    @property
    def total(self) -> int:
        return int(sum(a.size for a in self.arrivals_s))

    def counts(self) -> IntArray:
        return np.array([a.size for a in self.arrivals_s], dtype=np.int64)

    @classmethod
    def build(
        cls,
        epoch: int,
        start_s: float,
        function_ids: Sequence[str],
        t_ave_s: Sequence[float] | FloatArray,
        arrivals_s: Sequence[Sequence[float] | FloatArray],
    ) -> EpochRequests:
        return cls(
            epoch=epoch,
            start_s=float(start_s),
            function_ids=tuple(function_ids),
            t_ave_s=np.asarray(t_ave_s, dtype=np.float64),
            arrivals_s=tuple(np.sort(np.asarray(a, dtype=np.float64)) for a in arrivals_s),
        )
