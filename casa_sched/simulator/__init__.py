"""Request-level FaaS cluster simulator (CASA §V.A "detailed simulation") and its inputs."""

from casa_sched.simulator.engine import Simulator, plan_from_mapping
from casa_sched.simulator.inputs import (
    ClusterSpec,
    EpochRequests,
    HourlySignals,
    NodeSpec,
    SimParams,
    SimulationError,
)
from casa_sched.simulator.results import EpochResult, FunctionStats, SimulationResult

__all__ = [
    "ClusterSpec",
    "EpochRequests",
    "EpochResult",
    "FunctionStats",
    "HourlySignals",
    "NodeSpec",
    "SimParams",
    "SimulationError",
    "SimulationResult",
    "Simulator",
    "plan_from_mapping",
]
