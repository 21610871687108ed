"""Request-level FaaS cluster simulator (CASA §V.A "detailed simulation") and its inputs.

The types it shares with the planners (cluster, parameters, per-epoch results) live in
:mod:`casa_sched.contract`.
"""

from casa_sched.simulator.engine import Simulator, plan_from_mapping
from casa_sched.simulator.inputs import EpochRequests, HourlySignals
from casa_sched.simulator.results import SimulationResult

__all__ = ["EpochRequests", "HourlySignals", "SimulationResult", "Simulator", "plan_from_mapping"]
