"""The cluster a planner plans for and the model parameters it plans with (paper §VI.A, eqs. 1, 2, 8).

Part of the planner contract: the simulator, the estimator, every planner and the autoscaler
read these; none of them owns them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from casa_sched.contract._defaults import setting_default
from casa_sched.models.power import DEFAULT_NODE_CURVE, PowerCurve
from casa_sched.settings import (
    CasaSettings,
    ClusterSettings,
    OverheadSettings,
    SimulationSettings,
    SLOSettings,
    WorkloadSettings,
)


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
    """The N nodes plus the cluster-wide parts of eqs. (1) and (8).

    The defaults are the settings' (:class:`~casa_sched.settings.ClusterSettings`), read from the
    field definitions, not restated; :meth:`uniform` builds a cluster from loaded settings.
    """

    nodes: tuple[NodeSpec, ...]
    storage_power_w: float = setting_default(ClusterSettings, "storage_power_w")
    network_power_w: float = setting_default(ClusterSettings, "network_power_w")
    image_bandwidth_mb_per_s: float = setting_default(ClusterSettings, "image_bandwidth_mb_per_s")
    switch_delay_s: float = setting_default(ClusterSettings, "switch_delay_s")
    sleep_empty_nodes: bool = setting_default(ClusterSettings, "sleep_empty_nodes")
    sleep_power_w: float = setting_default(ClusterSettings, "sleep_power_w")
    wake_latency_s: float = setting_default(ClusterSettings, "wake_latency_s")
    scale_down_unneeded_s: float = setting_default(ClusterSettings, "scale_down_unneeded_s")

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
    def uniform(cls, n_nodes: int, settings: CasaSettings, curve: PowerCurve = DEFAULT_NODE_CURVE) -> ClusterSpec:
        """``n_nodes`` identical nodes named ``node-0..``, parameters from ``settings``."""
        s = settings.cluster
        hops = s.switch_hops
        nodes = tuple(
            NodeSpec(f"node-{i}", s.cores_per_node, s.memory_mb_per_node, curve, hops[i % len(hops)])
            for i in range(n_nodes)
        )
        return cls.from_settings(nodes, settings)

    @classmethod
    def from_settings(cls, nodes: tuple[NodeSpec, ...], settings: CasaSettings) -> ClusterSpec:
        """The given nodes with every cluster-wide parameter from ``settings.cluster``."""
        s = settings.cluster
        return cls(
            nodes=nodes,
            storage_power_w=s.storage_power_w,
            network_power_w=s.network_power_w,
            image_bandwidth_mb_per_s=s.image_bandwidth_mb_per_s,
            switch_delay_s=s.switch_delay_s,
            sleep_empty_nodes=s.sleep_empty_nodes,
            sleep_power_w=s.sleep_power_w,
            wake_latency_s=s.wake_latency_s,
            scale_down_unneeded_s=s.scale_down_unneeded_s,
        )


@dataclass(frozen=True)
class SimParams:
    """Workload, SLO, container-overhead and platform parameters.

    The defaults are the settings' (``workload``, ``slo``, ``overheads`` and ``simulation``
    sections), read from the field definitions, not restated; :meth:`from_settings` builds them
    from loaded settings.
    """

    request_cpu_cores: float = setting_default(WorkloadSettings, "request_cpu_cores")
    laxity: float = setting_default(SLOSettings, "laxity")
    base_cpu_cores: float = setting_default(WorkloadSettings, "base_cpu_cores")
    base_memory_mb: float = setting_default(WorkloadSettings, "base_memory_mb")
    image_mb: float = setting_default(WorkloadSettings, "image_mb")
    max_container_size: int = setting_default(WorkloadSettings, "max_container_size")
    utilisation: Literal["busy", "allocated"] = setting_default(WorkloadSettings, "utilisation")
    starting_cores: float = setting_default(OverheadSettings, "starting_cores")
    idle_cores: float = setting_default(OverheadSettings, "idle_cores")
    stopping_cores: float = setting_default(OverheadSettings, "stopping_cores")
    shutdown_s: float = setting_default(OverheadSettings, "shutdown_s")
    epoch_s: float = setting_default(WorkloadSettings, "epoch_s")
    autoscale: bool = setting_default(SimulationSettings, "autoscale")
    autoscale_interval_s: float = setting_default(SimulationSettings, "autoscale_interval_s")
    keepalive_s: float = setting_default(SimulationSettings, "keepalive_s")

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
        w, o, sim = settings.workload, settings.overheads, settings.simulation
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
            "autoscale": sim.autoscale,
            "autoscale_interval_s": sim.autoscale_interval_s,
            "keepalive_s": sim.keepalive_s,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def units_of(cpu_cores: float, params: SimParams) -> int:
    """A container's size in base units: ``round(cpu / base_cpu_cores)`` in ``[1, max_container_size]``.

    >>> units_of(4.0, SimParams()), units_of(0.5, SimParams()), units_of(3.0, SimParams())
    (2, 1, 2)
    """
    return min(params.max_container_size, max(1, math.floor(cpu_cores / params.base_cpu_cores + 0.5)))
