"""Replay a workload epoch by epoch under several policies, each on its own simulated cluster.

Per epoch: build the forecast (``oracle``: the epoch's true per-minute counts, as the paper
assumes; any registered forecaster's name, e.g. ``last``, ``ewma``, ``care``: that forecaster on
the trace's history before the epoch), the epoch's per-minute signals, and the
snapshot (cluster, parameters, the plan the policy used last epoch); time the planner; replay
the epoch's requests (generated once per epoch from the seed, shared by all policies) on the
policy's simulator. The seed is set here, once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from casa_sched.contract.cluster import ClusterSpec, SimParams
from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.plan import Plan
from casa_sched.contract.results import EpochResult
from casa_sched.contract.snapshot import ClusterSnapshot, PlannerConfig
from casa_sched.forecasting import MINUTES_PER_DAY, Forecaster, History, forecast
from casa_sched.forecasting import create as create_forecaster
from casa_sched.models.accounting import WaterFactors
from casa_sched.planners import Planner, create
from casa_sched.planners.base import Episode
from casa_sched.simulator import EpochRequests, HourlySignals, Simulator
from casa_sched.simulator.results import SimulationResult
from casa_sched.traces import Workload

ORACLE = "oracle"
# "oracle" or the registry name of a forecaster (casa_sched.forecasting)
ForecastMode = str


@dataclass(frozen=True)
class Scenario:
    """Everything a run needs; ``hourly`` covers simulation hours 0, 1, … from the first minute."""

    workload: Workload
    cluster: ClusterSpec
    params: SimParams
    hourly: HourlySignals
    config: PlannerConfig
    epochs: int
    forecast: ForecastMode = ORACLE
    seed: int = 0
    # the forecaster named by ``forecast`` with its settings; None: built with default settings
    forecaster: Forecaster | None = None

    def __post_init__(self) -> None:
        per_epoch = self.params.epoch_s / 60.0
        if abs(per_epoch - round(per_epoch)) > 1e-9:
            raise ValueError(f"epoch_s must be whole minutes, got {self.params.epoch_s} s")
        available = self.workload.n_minutes // round(per_epoch)
        if not 1 <= self.epochs <= available:
            raise ValueError(f"epochs must be in 1..{available} for this workload, got {self.epochs}")
        if self.hourly.hours * 3600.0 < self.epochs * self.params.epoch_s:
            raise ValueError("hourly signals do not cover the simulated epochs")

    @property
    def epoch_minutes(self) -> int:
        return round(self.params.epoch_s / 60.0)

    @property
    def water(self) -> WaterFactors:
        return self.hourly.water

    def forecast_for(self, epoch: int) -> Forecast:
        """The planner's view of ``epoch``: its true counts (oracle) or the forecaster's
        prediction from the trace's minutes before the epoch (epoch 0 has no history: zero)."""
        m = self.epoch_minutes
        wl = self.workload
        if self.forecast == ORACLE:
            return Forecast(
                epoch=epoch,
                start_s=epoch * self.params.epoch_s,
                function_ids=wl.function_ids,
                counts=wl.counts[:, epoch * m : (epoch + 1) * m].astype(np.float64),
                t_ave_s=wl.t_ave_s,
                memory_mb=wl.memory_mb,
            )
        forecaster = self.forecaster if self.forecaster is not None else create_forecaster(self.forecast)
        history = History(
            function_ids=wl.function_ids,
            counts=wl.counts[:, : epoch * m].astype(np.float64),
            start_minute_of_day=wl.start_minute % MINUTES_PER_DAY,
            t_ave_s=wl.t_ave_s,
            memory_mb=wl.memory_mb,
        )
        return forecast(forecaster, history, epoch, epoch * self.params.epoch_s, m)

    def signals_for(self, epoch: int) -> EpochSignals:
        """The epoch's per-minute signals: what its planner and its simulator are both given."""
        return self.hourly.window(epoch * self.params.epoch_s, self.epoch_minutes)

    def requests_for(self, epoch: int) -> EpochRequests:
        wl = self.workload
        arrivals = wl.arrivals_by_function(epoch, seed=self.seed, epoch_min=self.epoch_minutes)
        return EpochRequests(epoch, epoch * self.params.epoch_s, wl.function_ids, wl.t_ave_s, tuple(arrivals))


@dataclass
class PolicyRun:
    """One policy's results: the simulator's per-epoch numbers and the planning times."""

    policy: str
    cstr: float
    result: SimulationResult | None = None
    plan_seconds: list[float] = field(default_factory=list)
    predicted_sl: list[float] = field(default_factory=list)
    # epochs whose search the wall clock cut short (before ``gen``): their plans, and so the
    # run's numbers, depend on machine speed and load; 0 means the run is reproducible
    time_bound_epochs: int = 0

    @property
    def plan_seconds_mean(self) -> float:
        return float(np.mean(self.plan_seconds)) if self.plan_seconds else 0.0

    def summary(self) -> dict[str, float]:
        assert self.result is not None
        r = self.result
        return {
            "carbon_g": r.accounting.carbon_g,
            "energy_kwh": r.accounting.energy_kwh,
            "cost_usd": r.accounting.cost_usd,
            "water_l": r.accounting.water_l,
            "slo_violation_rate": r.slo_violation_rate,
            "request_violation_rate": r.request_violation_rate,
            "load": r.load,
            "requests": float(r.requests),
            "dropped": float(r.dropped),
            "cold_starts": float(sum(e.cold_starts for e in r.epochs)),
            "epochs_meeting_cstr": float(sum(e.slo_violation_rate <= self.cstr for e in r.epochs)),
            "plan_seconds_mean": self.plan_seconds_mean,
            "plan_seconds_max": max(self.plan_seconds, default=0.0),
            "plan_epochs_time_bound": float(self.time_bound_epochs),
        }


EpochCallback = Callable[[str, int, EpochResult, float], None]
TRAIN_EPOCHS = 8
TRAIN_PASSES = 3


def training_epochs(scenario: Scenario) -> tuple[list[int], int]:
    """Held-out epochs for learning policies: the ones after the evaluated epochs when the trace
    has them; otherwise the evaluated epochs replayed with another arrival seed (weaker
    separation, reported in the run's metadata)."""
    available = scenario.workload.n_minutes // scenario.epoch_minutes
    after = list(range(scenario.epochs, min(available, scenario.epochs + TRAIN_EPOCHS)))
    if after:
        return after, scenario.seed
    return list(range(min(scenario.epochs, TRAIN_EPOCHS))), scenario.seed + 1_000_003


def training_episodes(scenario: Scenario) -> list[Episode]:
    """Episodes that plan and simulate the held-out epochs in order, feeding results back."""
    epochs, seed = training_epochs(scenario)
    horizon = (max(epochs) + 1) * scenario.params.epoch_s
    # held-out epochs past the signal data hold its last hour (rewards do not depend on carbon)
    held_out = Scenario(
        workload=scenario.workload, cluster=scenario.cluster, params=scenario.params,
        hourly=scenario.hourly.extended(math.ceil(horizon / 3600.0)), config=scenario.config,
        epochs=max(epochs) + 1, forecast=scenario.forecast, seed=seed,
        forecaster=scenario.forecaster,
    )  # fmt: skip

    def episode(planner: Planner) -> None:
        sim = Simulator(
            scenario.cluster,
            scenario.params,
            horizon,
            scenario.water,
            node_manager_s=None if planner.plans_node_power else scenario.cluster.scale_down_unneeded_s,
        )
        previous: Plan | None = None
        for e in epochs:
            snapshot = ClusterSnapshot(scenario.cluster, scenario.params, previous, scenario.water)
            signals = held_out.signals_for(e)
            plan = planner.plan(snapshot, held_out.forecast_for(e), signals)
            planner.observe(sim.run_epoch(plan, held_out.requests_for(e), signals))
            previous = plan

    return [episode] * TRAIN_PASSES


def run_policies(
    scenario: Scenario,
    policies: Sequence[str],
    on_epoch: EpochCallback | None = None,
    planners: dict[str, Planner] | None = None,
    initial: Plan | None = None,
    hold_first_epoch: bool = False,
    scale_from_zero: bool = True,
    forecasts: Sequence[Forecast | None] | None = None,
) -> dict[str, PolicyRun]:
    """Run every policy over the scenario's epochs, in lockstep so each epoch's arrivals are made once.

    ``initial`` is D_{-1}, the containers running before epoch 0 (none by default). With
    ``hold_first_epoch`` epoch 0 runs ``initial`` itself instead of a plan, as ``casa autoscaler``
    holds every function it has no metrics for yet (its first epoch after a start from scratch).
    ``scale_from_zero=False`` replays without on-demand starts: a function the plan gives no
    container drops its requests, as on plain Deployments (no activator); the planners are not told.
    ``forecasts[e]``, where given and not None, is planned on in epoch ``e`` instead of the
    scenario's own forecast (e.g. what a live run's forecaster read from Prometheus).
    """
    if hold_first_epoch and initial is None:
        raise ValueError("hold_first_epoch needs the initial plan D_{-1}")
    planners = dict(planners or {})
    for name in policies:
        planners.setdefault(name, create(name, scenario.config))
        planners[name].train(training_episodes(scenario))  # a no-op for policies that do not learn
    horizon_s = scenario.epochs * scenario.params.epoch_s
    # With power management on, a policy that does not plan node power states gets the
    # cluster-autoscaler-style node manager (scale_down_unneeded_s) its deployment would have.
    sims = {
        name: Simulator(
            scenario.cluster,
            scenario.params,
            horizon_s,
            scenario.water,
            node_manager_s=None if planners[name].plans_node_power else scenario.cluster.scale_down_unneeded_s,
        )
        for name in policies
    }
    runs = {name: PolicyRun(name, scenario.config.cstr) for name in policies}
    previous: dict[str, Plan | None] = dict.fromkeys(policies, initial)
    for epoch in range(scenario.epochs):
        given = forecasts[epoch] if forecasts is not None and epoch < len(forecasts) else None
        forecast = given if given is not None else scenario.forecast_for(epoch)
        signals = scenario.signals_for(epoch)
        requests = scenario.requests_for(epoch)
        for name in policies:
            snapshot = ClusterSnapshot(scenario.cluster, scenario.params, previous[name], scenario.water)
            started = time.perf_counter()
            if hold_first_epoch and epoch == 0 and initial is not None:
                plan = replace(initial, epoch=0)
            else:
                plan = planners[name].plan(snapshot, forecast, signals)
            elapsed = time.perf_counter() - started
            result = sims[name].run_epoch(plan, requests, signals, on_demand=scale_from_zero)
            planners[name].observe(result)
            previous[name] = plan
            runs[name].plan_seconds.append(elapsed)
            trace = planners[name].last_trace
            runs[name].time_bound_epochs += trace is not None and trace.time_bound
            runs[name].predicted_sl.append(plan.predicted.slo_violation_rate if plan.predicted else math.nan)
            if on_epoch is not None:
                on_epoch(name, epoch, result, elapsed)
    for name in policies:
        runs[name].result = sims[name].finish()
    return runs
