"""The cluster a planner plans for and the model parameters it plans with (paper §VI.A, eqs. 1, 2, 8).

Part of the planner contract: the simulator, the estimator, every planner and the autoscaler
read these; none of them owns them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from casa_sched.models.power import DEFAULT_NODE_CURVE, PowerCurve
from casa_sched.settings import CasaSettings


class SimulationError(ValueError):
    """Contract inputs the planners and the simulator cannot run with (an infeasible plan,
    misaligned signals, ...)."""


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
