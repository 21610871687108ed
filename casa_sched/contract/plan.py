"""The epoch plan: which containers each function gets, on which node, at which size.

A :class:`Plan` is the only thing a planner returns and the only thing the extender and the
autoscaler act on. It is frozen and versioned; a search move returns a new plan.
Container sizes are integer multiples ``k`` of the base allocation (paper §VI.A: 2 cores and
150 MB per unit).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

PLAN_FORMAT_VERSION = 1
BASE_CPU_CORES = 2.0  # paper §VI.A: baseline container allocation
BASE_MEMORY_MB = 150.0  # paper §VI.A


class PlanError(ValueError):
    """A plan document that cannot be parsed or is inconsistent; the message names the field."""


@dataclass(frozen=True, slots=True)
class Container:
    """One container of a function: the node it runs on and its size in base units (k ≥ 1)."""

    node: str
    size: int = 1

    def __post_init__(self) -> None:
        if not self.node:
            raise PlanError("container node name must not be empty")
        if self.size < 1:
            raise PlanError(f"container size must be an integer >= 1 base unit, got {self.size}")


@dataclass(frozen=True)
class PlanInputs:
    """What a plan was made from: the policy, the epoch's signals and a forecast summary."""

    policy: str = "unknown"
    ci_g_per_kwh: float = math.nan
    price_usd_per_kwh: float = math.nan
    cooling_factor: float = math.nan
    forecast_functions: int = 0
    forecast_requests: float = 0.0


@dataclass(frozen=True)
class PredictedMetrics:
    """The planner's own prediction for the epoch (the simulator gives the reported numbers)."""

    carbon_g: float
    energy_kwh: float
    cost_usd: float
    slo_violation_rate: float
    load: float


@dataclass(frozen=True)
class Plan:
    """Containers per function for one epoch, plus provenance and predictions."""

    epoch: int
    containers: Mapping[str, tuple[Container, ...]]
    epoch_start: datetime | None = None
    epoch_length_s: float = 900.0
    base_cpu_cores: float = BASE_CPU_CORES
    base_memory_mb: float = BASE_MEMORY_MB
    inputs: PlanInputs = field(default_factory=PlanInputs)
    predicted: PredictedMetrics | None = None
    # Nodes planned to sleep (powered down) for the epoch, sorted; every other node is on. A
    # sleeping node hosts no planned container. Absent from older documents: all nodes on.
    sleeping_nodes: tuple[str, ...] = ()
    version: int = PLAN_FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.epoch_start is not None and self.epoch_start.tzinfo is None:
            raise PlanError("epoch_start must be timezone-aware")
        if self.epoch_length_s <= 0:
            raise PlanError(f"epoch_length_s must be > 0 s, got {self.epoch_length_s}")
        frozen = {f: tuple(cs) for f, cs in self.containers.items() if cs}
        object.__setattr__(self, "containers", MappingProxyType(frozen))
        sleeping = tuple(sorted(set(self.sleeping_nodes)))
        busy = sorted({c.node for cs in frozen.values() for c in cs}.intersection(sleeping))
        if busy:
            raise PlanError(f"sleeping_nodes must host no container, but {', '.join(busy)} do")
        object.__setattr__(self, "sleeping_nodes", sleeping)

    # -- queries -------------------------------------------------------------------------------
    @property
    def functions(self) -> tuple[str, ...]:
        return tuple(self.containers)

    def nodes(self) -> tuple[str, ...]:
        """Every node that hosts at least one planned container, sorted."""
        return tuple(sorted({c.node for cs in self.containers.values() for c in cs}))

    def containers_of(self, function: str) -> tuple[Container, ...]:
        return self.containers.get(function, ())

    def slots_by_node(self, function: str) -> dict[str, int]:
        """Planned containers (pods) of ``function`` per node."""
        out: dict[str, int] = {}
        for c in self.containers_of(function):
            out[c.node] = out.get(c.node, 0) + 1
        return out

    def allocated_cores_by_node(self) -> dict[str, float]:
        """CPU cores allocated on each node by all planned containers."""
        out: dict[str, float] = {}
        for cs in self.containers.values():
            for c in cs:
                out[c.node] = out.get(c.node, 0.0) + c.size * self.base_cpu_cores
        return out

    def container_count(self) -> int:
        return sum(len(cs) for cs in self.containers.values())

    # -- moves ---------------------------------------------------------------------------------
    def with_function(self, function: str, containers: Iterable[Container]) -> Plan:
        """A new plan in which ``function`` has exactly ``containers`` (none removes it)."""
        updated = dict(self.containers)
        updated[function] = tuple(containers)
        return replace(self, containers=updated)

    def with_predicted(self, predicted: PredictedMetrics) -> Plan:
        return replace(self, predicted=predicted)

    def with_sleeping(self, nodes: Iterable[str]) -> Plan:
        """A new plan in which exactly ``nodes`` sleep (each must host no container)."""
        return replace(self, sleeping_nodes=tuple(nodes))

    # -- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "epoch": self.epoch,
            "epoch_start": self.epoch_start.isoformat() if self.epoch_start else None,
            "epoch_length_s": self.epoch_length_s,
            "base_cpu_cores": self.base_cpu_cores,
            "base_memory_mb": self.base_memory_mb,
            "inputs": _finite_or_none(self.inputs.__dict__),
            "predicted": _finite_or_none(self.predicted.__dict__) if self.predicted else None,
            "containers": {
                f: [{"node": c.node, "size": c.size} for c in cs] for f, cs in sorted(self.containers.items())
            },
            "sleeping_nodes": list(self.sleeping_nodes),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        try:
            version = int(data["version"])
            if version != PLAN_FORMAT_VERSION:
                raise PlanError(f"unsupported plan version {version} (this build reads {PLAN_FORMAT_VERSION})")
            start_raw = data.get("epoch_start")
            start = datetime.fromisoformat(start_raw) if start_raw else None
            raw_inputs = dict(data.get("inputs") or {})
            inputs = PlanInputs(
                policy=str(raw_inputs.get("policy", "unknown")),
                ci_g_per_kwh=_num(raw_inputs.get("ci_g_per_kwh")),
                price_usd_per_kwh=_num(raw_inputs.get("price_usd_per_kwh")),
                cooling_factor=_num(raw_inputs.get("cooling_factor")),
                forecast_functions=int(raw_inputs.get("forecast_functions", 0)),
                forecast_requests=float(raw_inputs.get("forecast_requests", 0.0)),
            )
            raw_pred = data.get("predicted")
            predicted = (
                PredictedMetrics(**{k: _num(raw_pred.get(k)) for k in PredictedMetrics.__dataclass_fields__})
                if raw_pred
                else None
            )
            containers = {
                str(f): tuple(Container(node=str(c["node"]), size=int(c["size"])) for c in cs)
                for f, cs in dict(data["containers"]).items()
            }
            return cls(
                epoch=int(data["epoch"]),
                containers=containers,
                epoch_start=start,
                epoch_length_s=float(data.get("epoch_length_s", 900.0)),
                base_cpu_cores=float(data.get("base_cpu_cores", BASE_CPU_CORES)),
                base_memory_mb=float(data.get("base_memory_mb", BASE_MEMORY_MB)),
                inputs=inputs,
                predicted=predicted,
                sleeping_nodes=tuple(str(n) for n in data.get("sleeping_nodes") or ()),
                version=version,
            )
        except PlanError:
            raise
        except KeyError as exc:
            raise PlanError(f"invalid plan document: required field {exc} is missing") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise PlanError(f"invalid plan document: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> Plan:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanError(f"plan is not valid JSON: {exc.msg} at char {exc.pos}") from exc
        except RecursionError:
            raise PlanError("plan JSON is nested too deeply to be a plan") from None
        if not isinstance(data, dict):
            raise PlanError("plan JSON must be an object")
        return cls.from_dict(data)


def _finite_or_none(values: Mapping[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: unknown numbers are written as null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}


def _num(value: Any) -> float:
    """A JSON number, or NaN for null (unknown)."""
    return math.nan if value is None else float(value)
