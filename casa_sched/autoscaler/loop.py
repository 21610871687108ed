"""The live epoch loop: snapshot → forecast → signals → plan → store → apply (paper §V, Fig. 7; §V.D).

One iteration per epoch, aligned to the wall clock (epoch ``e`` covers
``[e · epoch_s, (e + 1) · epoch_s)`` seconds since the Unix epoch, so every replica agrees on
the epoch number), then intra-epoch ticks until the next epoch:

1. **store read** — the plan ConfigMap. If it already holds this epoch's plan and records it
   applied, nothing is planned or applied again (a restart or a new leader resumes); if it
   holds this epoch's plan not yet applied, that plan is applied instead of planning anew.
2. **snapshot** — nodes, function workloads and pods (:mod:`.snapshot`), D_{e-1} included.
3. **forecast** — the next epoch's requests per function (:mod:`.forecast`); functions without
   metrics are *held* (kept as they are, their capacity reserved).
4. **signals** — CI, price and E_t per minute (:mod:`.epoch_signals`).
5. **plan** — the configured policy (``planner.policy``) within ``planner.time_budget_s``. CASA
   returns its best plan when the budget ends; a planner that overruns the hard deadline
   (budget + ``autoscaler.planner_grace_s``) or fails keeps D_{e-1} (counted in
   ``casa_autoscaler_plan_fallback_total``).
6. **store** — the plan, its epoch and content hash, with optimistic concurrency (:mod:`.store`).
7. **apply** — actions computed purely (:mod:`.actions`) and executed (:mod:`.apply`), in passes
   until nothing is left to do or ``autoscaler.apply_settle_s`` passes; the plan is recorded
   applied once a pass leaves no action pending or failed.
8. **power** — the plan's sleeping nodes are cordoned, drained of function pods and powered off,
   its other casa-powered-down nodes powered on and uncordoned (:mod:`.power_hook`; nothing with
   ``autoscaler.power_mode = none``).

Each intra-epoch tick (``autoscaler.intra_interval_s``) runs one more convergence pass (new pods
get their planned size once Running, actions left pending are resumed), one more power pass (a
drain or a wake finishes) and grows saturated functions in place (:mod:`.intra`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from casa_sched.autoscaler.actions import Action, Deferred, ResizeAction, compute_actions
from casa_sched.autoscaler.adapters.base import AdapterError, PlatformAdapter
from casa_sched.autoscaler.apply import Executor, Outcome
from casa_sched.autoscaler.epoch_signals import SignalReader
from casa_sched.autoscaler.forecast import Forecaster, FunctionInfo, MetricsSource
from casa_sched.autoscaler.intra import grow, saturated
from casa_sched.autoscaler.power_hook import PowerReport, apply_power_states
from casa_sched.autoscaler.snapshot import MIB, LiveState, planner_snapshot, previous_plan, read_state
from casa_sched.autoscaler.store import PlanStore, StoredPlan, plan_hash
from casa_sched.contract.cluster import ClusterSpec, SimParams, SimulationError
from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.plan import Plan, PlanInputs
from casa_sched.contract.snapshot import ClusterSnapshot, PlannerConfig
from casa_sched.metrics import CasaMetrics
from casa_sched.planners import Planner, PlannerError, create
from casa_sched.settings import CasaSettings

log = logging.getLogger(__name__)


@dataclass
class EpochReport:
    """What one epoch did: for the log, ``--once --json`` and the benchmark."""

    epoch: int
    start: datetime
    status: str  # planned | resumed | already-applied | no-nodes
    phases_s: dict[str, float] = field(default_factory=dict)
    writes: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    deferred: list[Deferred] = field(default_factory=list)
    held: tuple[str, ...] = ()
    plan: Plan | None = None
    plan_hash: str | None = None
    applied: bool = False
    message: str = ""
    power: PowerReport | None = None  # node power states (autoscaler.power_mode), after the apply

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "start": self.start.isoformat(),
            "status": self.status,
            "phases_s": {k: round(v, 4) for k, v in self.phases_s.items()},
            "writes": self.writes,
            "applied": self.applied,
            "plan_hash": self.plan_hash,
            "held": list(self.held),
            "containers": self.plan.container_count() if self.plan else 0,
            "actions": [o.row() for o in self.outcomes],
            "deferred": [{"function": d.function, "pod": d.pod, "reason": d.reason} for d in self.deferred],
            "message": self.message,
            "power": self.power.to_dict() if self.power else None,
        }


@dataclass
class _Current:
    """The epoch being applied and kept converged by the ticks."""

    epoch: int
    plan: Plan
    managed: tuple[str, ...]
    stored: StoredPlan | None
    applied: bool
    reported: set[tuple[str, int]] = field(default_factory=set)  # (pod key, units) resize outcomes seen
    not_applied: dict[str, dict[str, Any]] = field(default_factory=dict)  # pod key → what failed


class _Phases:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.seconds: dict[str, float] = {}

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        t0 = self._clock()
        try:
            return fn()
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + self._clock() - t0


class Autoscaler:
    """One replica's epoch controller (leader election is the caller's: see :func:`run_forever`)."""

    def __init__(
        self,
        settings: CasaSettings,
        api_client: Any,
        adapters: Sequence[PlatformAdapter],
        forecaster: Forecaster,
        source: MetricsSource,
        signals: SignalReader,
        store: PlanStore,
        executor: Executor,
        metrics: CasaMetrics,
        *,
        resize_supported: bool = True,
        leader: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        real_s: Callable[[float], float] = float,
    ) -> None:
        self.settings = settings
        self.api_client = api_client
        self.adapters = list(adapters)
        self.forecaster = forecaster
        self.source = source
        self.signals = signals
        self.store = store
        self.executor = executor
        self.metrics = metrics
        self.resize_supported = resize_supported
        self.leader = leader  # checked between passes: a replica that lost the Lease stops acting
        self.clock = clock
        self.monotonic = monotonic
        self.sleep = sleep
        self.real_s = real_s  # wall-clock seconds of a duration on ``clock`` (casa_sched.clock)
        a = settings.autoscaler
        self.epoch_s = settings.workload.epoch_s
        # epochs align to the exact epoch_s; the planner sees whole minutes (its forecast's unit)
        self.params = SimParams.from_settings(settings, epoch_s=60.0 * max(1, round(self.epoch_s / 60.0)))
        self.config = PlannerConfig.from_settings(settings)
        self.planner: Planner = create(settings.planner.policy, self.config)
        self.dry_run = executor.dry_run
        self.apply_settle_s = a.apply_settle_s
        self.settle_poll_s = a.settle_poll_s
        self.planner_grace_s = a.planner_grace_s
        self.current: _Current | None = None
        self.grown: dict[str, int] = {}
        self._planning: threading.Thread | None = None
        self.power_blocked: dict[str, tuple[str, ...]] = {}  # node → its non-function pods, warned about once

    def warm_up(self) -> float:
        """Load the planner's compiled kernels before the first epoch (see :func:`warm_up_planner`)."""
        return warm_up_planner(self.settings, self.config, self.params)

    # -- epochs on the wall clock -----------------------------------------------------------
    def epoch_at(self, unix_s: float) -> int:
        return math.floor(unix_s / self.epoch_s)

    def epoch_start(self, epoch: int) -> datetime:
        return datetime.fromtimestamp(epoch * self.epoch_s, UTC)

    def seconds_to_next_epoch(self, unix_s: float) -> float:
        return (self.epoch_at(unix_s) + 1) * self.epoch_s - unix_s

    # -- one epoch ---------------------------------------------------------------------------
    def _writes(self) -> int:
        return int(getattr(self.api_client, "write_count", 0))

    def run_epoch(self, epoch: int) -> EpochReport:
        """Plan (or resume) and apply epoch ``epoch``; raises :class:`AdapterError` when the API
        cannot be read at all (the caller backs off and retries the epoch)."""
        writes0 = self._writes()
        phases = _Phases(self.monotonic)
        start = self.epoch_start(epoch)
        if self.current is None or self.current.epoch != epoch:
            self.grown = {}  # back to the plan's sizes each epoch (paper §V.D)
        stored: StoredPlan = phases.run("store", self.store.read)
        state: LiveState = phases.run("snapshot", lambda: read_state(self.api_client, self.adapters))
        for w in state.warnings:
            log.warning("%s", w)
        for n in state.nodes:
            self.metrics.node_power_model_invalid.labels(node=n.name).set(1.0 if n.power_model == "invalid" else 0.0)
        report = EpochReport(epoch, start, "planned")
        if stored.plan is not None and stored.plan.epoch == epoch:
            held = stored.held
            managed = tuple(sorted({w.function for w in state.workloads} - set(held)))
            if stored.applied:
                report.status = "already-applied"
                self.current = _Current(epoch, stored.plan, managed, stored, applied=True)
                report.plan, report.plan_hash, report.held, report.applied = stored.plan, stored.plan_hash, held, True
                done_plan = stored.plan
                report.power = phases.run("power", lambda: self._power(done_plan, state))  # a drain left unfinished
                report.phases_s = phases.seconds
                log.info("epoch %d: plan %s already applied; nothing to redo", epoch, stored.plan_hash)
                return report
            report.status = "resumed"
            plan = stored.plan
            log.info("epoch %d: resuming the stored plan %s", epoch, stored.plan_hash)
        else:
            if not state.nodes:
                report.status, report.message = "no-nodes", "no Ready, schedulable node: nothing planned"
                log.warning("epoch %d: %s", epoch, report.message)
                report.phases_s = phases.seconds
                return report
            plan, managed, held = self._plan_epoch(epoch, start, state, phases)
            if not self.dry_run:
                stored = phases.run("store", lambda: self.store.store_plan(plan, held))
            else:
                stored = StoredPlan(plan, plan_hash(plan.to_json()), None, None, None, held=held)
        report.plan, report.plan_hash, report.held = plan, stored.plan_hash, held
        self.current = _Current(epoch, plan, managed, stored if not self.dry_run else None, applied=False)
        self.metrics.autoscaler_held_functions.set(len(held))
        self._mirror_plan(plan)
        outcomes, deferred = phases.run("apply", lambda: self._apply(state))
        report.outcomes, report.deferred = outcomes, deferred
        report.power = phases.run("power", lambda: self._power(plan))
        report.applied = self.current.applied
        report.phases_s = phases.seconds
        report.writes = self._writes() - writes0
        for name, seconds in phases.seconds.items():
            self.metrics.autoscaler_phase_seconds.labels(phase=name).set(seconds)
        if self.current.applied:
            self.metrics.autoscaler_epoch.set(epoch)
        return report

    def _plan_epoch(
        self, epoch: int, start: datetime, state: LiveState, phases: _Phases
    ) -> tuple[Plan, tuple[str, ...], tuple[str, ...]]:
        infos = []
        for w in state.workloads:
            pods = state.pods_of(w)
            mem = [p.containers[w.container][1] for p in pods if w.container in p.containers]
            infos.append(FunctionInfo(w.function, (max(mem) / MIB) if mem and max(mem) > 0 else self.params.base_memory_mb))
        fr = phases.run("forecast", lambda: self.forecaster.forecast(epoch, start, self.epoch_s, infos))
        managed = fr.forecast.function_ids
        held = fr.held
        if held:
            log.info("epoch %d: %d function(s) held for lack of metrics: %s", epoch, len(held), ", ".join(held[:10]))
        signals: EpochSignals = phases.run("signals", lambda: self.signals.read(start, self.epoch_s))
        snapshot = planner_snapshot(state, managed, self.settings, self.params, epoch)
        planned: Plan = phases.run("plan", lambda: self._run_planner(snapshot, fr.forecast, signals))
        held_plan = previous_plan(state, held, self.params, epoch)
        containers = {f: cs for f, cs in planned.containers.items() if f in set(managed)}
        containers.update(held_plan.containers)
        # a held function's pods stay where they are: their node cannot sleep (the planner saw
        # them only as reserved capacity)
        busy = {c.node for cs in containers.values() for c in cs}
        plan = replace(
            planned,
            epoch=epoch,
            containers=containers,
            sleeping_nodes=tuple(n for n in planned.sleeping_nodes if n not in busy),
            epoch_start=start,
            epoch_length_s=self.epoch_s,
            base_cpu_cores=self.params.base_cpu_cores,
            base_memory_mb=self.params.base_memory_mb,
        )
        return plan, managed, held

    def _run_planner(self, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals) -> Plan:
        """The policy's plan, or D_{e-1} when it fails or overruns its hard deadline."""
        fallback = replace(snapshot.previous or Plan(epoch=forecast.epoch, containers={}), epoch=forecast.epoch,
                           inputs=PlanInputs(policy=f"{self.planner.name}:kept-previous"))  # fmt: skip
        if not forecast.function_ids:
            return replace(fallback, containers={})
        if self._planning is not None and self._planning.is_alive():
            log.warning("the previous epoch's planner is still running: keeping D_{e-1}")
            self.metrics.autoscaler_plan_fallback_total.labels(reason="overrun").inc()
            return fallback
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["plan"] = self.planner.plan(snapshot, forecast, signals)
            except (PlannerError, SimulationError, ValueError) as exc:
                result["error"] = exc

        t0 = self.monotonic()
        self._planning = threading.Thread(target=work, name="casa-planner", daemon=True)
        self._planning.start()
        limit_s = self.config.budget_s(snapshot, forecast) + self.planner_grace_s
        self._planning.join(limit_s)
        self.metrics.plan_solve_seconds.observe(self.monotonic() - t0)
        if self._planning.is_alive():
            log.warning("planner %s overran its %.1f s deadline: keeping D_{e-1}", self.planner.name, limit_s)
            self.metrics.autoscaler_plan_fallback_total.labels(reason="overrun").inc()
            return fallback
        if "error" in result:
            log.warning("planner %s failed (%s): keeping D_{e-1}", self.planner.name, result["error"])
            self.metrics.autoscaler_plan_fallback_total.labels(reason="error").inc()
            return fallback
        plan: Plan = result["plan"]
        return plan

    def _mirror_plan(self, plan: Plan) -> None:
        self.metrics.plan_epoch.set(plan.epoch)
        self.metrics.plan_containers.clear()
        for f in plan.functions:
            for node, n in plan.slots_by_node(f).items():
                self.metrics.plan_containers.labels(function=f, node=node).set(n)

    # -- convergence -------------------------------------------------------------------------
    def _pass(self, state: LiveState, deadline: float) -> tuple[list[Outcome], list[Deferred], int]:
        """One convergence pass on ``state``: (outcomes, deferred, actions computed)."""
        cur = self.current
        assert cur is not None
        actions, deferred = compute_actions(state, cur.plan, cur.managed, self.params, self.grown)
        if not self.resize_supported:
            kept: list[Action] = [a for a in actions if not isinstance(a, ResizeAction)]
            deferred += [Deferred(a.function, a.pod, "no pods/resize on this API server")
                         for a in actions if isinstance(a, ResizeAction)]  # fmt: skip
            actions = kept
        self._follow_resizes(state)
        outcomes = self.executor.run(actions, deadline)
        return outcomes, deferred, len(actions)

    def _apply(self, state: LiveState) -> tuple[list[Outcome], list[Deferred]]:
        deadline = self.monotonic() + self.apply_settle_s
        all_outcomes: list[Outcome] = []
        while True:
            outcomes, deferred, n_actions = self._pass(state, deadline)
            all_outcomes.extend(outcomes)
            self._maybe_mark_applied(outcomes, deferred)
            if self.dry_run or (n_actions == 0 and not deferred) or self.monotonic() + self.settle_poll_s > deadline:
                return all_outcomes, deferred
            if not self.leader():
                log.warning("apply: no longer the leader; stopping")
                return all_outcomes, deferred
            self.sleep(self.settle_poll_s)
            try:
                state = read_state(self.api_client, self.adapters)
            except AdapterError as exc:
                log.warning("apply: re-reading the cluster failed (%s); the ticks will resume", exc)
                return all_outcomes, deferred

    def _maybe_mark_applied(self, outcomes: Sequence[Outcome], deferred: Sequence[Deferred]) -> None:
        cur = self.current
        if cur is None or cur.applied or self.dry_run or cur.stored is None:
            return
        if any(o.outcome in ("pending", "failed") for o in outcomes):
            return
        status = {
            "epoch": cur.epoch,
            "deferred": [{"function": d.function, "pod": d.pod, "reason": d.reason} for d in deferred],
            "not_applied": sorted(cur.not_applied.values(), key=lambda r: str(r.get("pod"))),
        }
        try:
            cur.stored = self.store.mark_applied(cur.stored, status)
        except AdapterError as exc:
            log.warning("epoch %d: recording the plan as applied failed (%s); retried next pass", cur.epoch, exc)
            return
        cur.applied = True
        self.metrics.autoscaler_epoch.set(cur.epoch)

    def _follow_resizes(self, state: LiveState) -> None:
        """Report each pod's resize outcome once per target size (:func:`~.resize.resize_state`):
        Infeasible → an Event, a metric and ``not_applied`` in the status; Deferred → a metric
        (the kubelet retries it; every pass looks again until the epoch ends, when it is
        recorded as not applied); applied → a metric, and any earlier failure is cleared. A pod
        that disappears is forgotten with one log line."""
        from casa_sched.autoscaler.resize import ResizePodError, ResizeState, resize_state

        cur = self.current
        assert cur is not None
        alive = {p.key for p in state.pods}
        for key in [k for k in cur.not_applied if k not in alive]:
            log.info("pod %s whose resize was not applied is gone", cur.not_applied.pop(key).get("pod"))
        for f in cur.managed:
            w = state.workload_of(f)
            if w is None:
                continue
            for p in state.pods_of(w):
                res = p.containers.get(w.container)
                if res is None or not p.running:
                    continue
                try:
                    status = resize_state(p.raw, w.container)
                except ResizePodError as exc:
                    log.warning("pod %s/%s: %s", p.namespace, p.name, exc)
                    continue
                tag = (p.key, round(res[0] * 1000))
                if status.state is ResizeState.INFEASIBLE:
                    if tag not in cur.reported:
                        cur.reported.add(tag)
                        self.metrics.autoscaler_resize_total.labels(outcome="infeasible").inc()
                        msg = (f"in-place resize of {w.container} to {res[0]:g} cores / {res[1] / MIB:g} MiB is "
                               f"Infeasible on node {p.node}: {status.message or 'no reason given'}")
                        log.warning("pod %s/%s: %s", p.namespace, p.name, msg)
                        self.executor.event(p.namespace, p.name, p.key, "CasaResizeInfeasible", msg)
                    cur.not_applied[p.key] = {"pod": f"{p.namespace}/{p.name}", "function": f,
                                              "cpu_cores": res[0], "reason": "Infeasible"}  # fmt: skip
                elif status.state is ResizeState.DEFERRED:
                    if tag not in cur.reported:
                        cur.reported.add(tag)
                        self.metrics.autoscaler_resize_total.labels(outcome="deferred").inc()
                        log.info("pod %s/%s: resize Deferred by the node; watching", p.namespace, p.name)
                    cur.not_applied[p.key] = {"pod": f"{p.namespace}/{p.name}", "function": f,
                                              "cpu_cores": res[0], "reason": "Deferred"}  # fmt: skip
                elif status.state is ResizeState.ERROR:
                    cur.not_applied[p.key] = {"pod": f"{p.namespace}/{p.name}", "function": f,
                                              "cpu_cores": res[0], "reason": f"Error: {status.message}"}  # fmt: skip
                elif status.state is ResizeState.APPLIED:
                    if tag not in cur.reported and cur.not_applied.pop(p.key, None) is not None:
                        self.metrics.autoscaler_resize_total.labels(outcome="applied").inc()
                    cur.reported.add(tag)

    def _power(self, plan: Plan, state: LiveState | None = None) -> PowerReport | None:
        """The plan's node power states (:mod:`.power_hook`), once its containers are applied."""
        if self.settings.autoscaler.power_mode == "none" or not self.leader():
            return None
        try:
            fresh = state if state is not None else read_state(self.api_client, self.adapters)
            return apply_power_states(self.api_client, plan, fresh, self.settings, self.dry_run, metrics=self.metrics,
                                      blocked=self.power_blocked)  # fmt: skip
        except AdapterError as exc:
            log.warning("node power states: %s; retried on the next pass", exc)
            return None

    # -- intra-epoch ---------------------------------------------------------------------------
    def tick(self) -> list[Outcome]:
        """One intra-epoch pass: converge on the current plan, then grow saturated functions."""
        cur = self.current
        if cur is None:
            return []
        state = read_state(self.api_client, self.adapters)
        self.metrics.autoscaler_ticks_total.inc()
        deadline = self.monotonic() + self.settings.autoscaler.intra_interval_s
        outcomes, deferred, _ = self._pass(state, deadline)
        self._maybe_mark_applied(outcomes, deferred)
        self._power(cur.plan, state)  # drains and wakes finish between epochs
        if not self.resize_supported:
            return outcomes
        pods = [f"{p.namespace}/{p.name}" for p in state.pods if p.running]
        hot = saturated(state, cur.plan, cur.managed, self.params, self.source.in_flight(list(cur.managed)),
                        self.source.cpu_usage_cores(pods), self.settings.autoscaler.saturation_cpu_ratio)  # fmt: skip
        if not hot:
            return outcomes
        before = dict(self.grown)
        self.grown = grow(state, cur.plan, hot, self.params, self.grown)
        added = sum(self.grown.values()) - sum(before.values())
        if added:
            self.metrics.autoscaler_intra_grows_total.inc(added)
            log.info("intra-epoch: %d unit(s) added for %s", added, ", ".join(s.function for s in hot))
            more, _, _ = self._pass(state, deadline)
            outcomes.extend(more)
        return outcomes


def warm_up_planner(settings: CasaSettings, config: PlannerConfig, params: SimParams) -> float:
    """Plan one tiny throwaway problem so the first epoch's planner time is search, not set-up.

    The estimator's compiled kernels load (or compile, when numba's cache is cold) on their
    first call, which takes seconds on a small machine and would count against the first
    epoch's hard deadline. A separate planner instance is used, so no policy state (RL's
    table, Hybrid's history) learns from the dummy epoch. Returns the seconds it took.
    """
    t0 = time.monotonic()
    minutes = max(1, round(params.epoch_s / 60.0))
    quick = replace(config, time_budget_s=min(config.time_budget_s or 0.5, 0.5))
    snapshot = ClusterSnapshot(cluster=ClusterSpec.uniform(1, settings), params=params)
    forecast = Forecast(epoch=0, start_s=0.0, function_ids=("warm-up",), counts=np.ones((1, minutes)),
                        t_ave_s=np.ones(1), memory_mb=np.full(1, params.base_memory_mb))  # fmt: skip
    flat = np.ones(minutes)
    signals = EpochSignals(ci_g_per_kwh=flat * 400.0, price_usd_per_kwh=flat * 0.1, cooling_factor=flat * 0.1)
    try:
        create(settings.planner.policy, quick).plan(snapshot, forecast, signals)
    except (PlannerError, SimulationError, ValueError) as exc:  # the real epoch will report it again
        log.warning("planner warm-up failed: %s", exc)
    return time.monotonic() - t0


class Elector(Protocol):
    """What :func:`run_forever` needs of leader election (:class:`~.lease.LeaderElector`, renewing
    in its own thread so a long epoch keeps the Lease)."""

    def is_leader(self) -> bool: ...

    def release(self) -> object: ...


def run_forever(
    autoscaler: Autoscaler,
    elector: Elector,
    stop: threading.Event,
    *,
    once: bool = False,
    on_report: Callable[[EpochReport], None] | None = None,
    retry: Mapping[str, float] | None = None,
    leader_wait_s: float = 20.0,
) -> EpochReport | None:
    """Epochs and ticks until ``stop`` is set (or one epoch with ``once``), while leader.

    A standby polls ``elector.is_leader()`` every second; with ``once`` it waits up to
    ``leader_wait_s`` for the Lease and then exits without acting. A failed epoch (API
    unreachable, 429, 5xx) is retried with exponential backoff (``retry["min_s"]`` doubling to
    ``retry["max_s"]``). The Lease is released on the way out (SIGTERM sets ``stop``).
    """
    r = {"min_s": 1.0, "max_s": 60.0, **(retry or {})}
    interval_s = autoscaler.settings.autoscaler.intra_interval_s
    done_epoch: int | None = None
    backoff_s = 0.0
    last: EpochReport | None = None
    log.info("planner %s warmed up in %.1f s", autoscaler.planner.name, autoscaler.warm_up())
    waited_from = autoscaler.monotonic()
    try:
        while not stop.is_set():
            leader = elector.is_leader()
            autoscaler.metrics.autoscaler_leader.set(1.0 if leader else 0.0)
            if not leader:
                if once and autoscaler.monotonic() - waited_from > leader_wait_s:
                    log.info("not the leader; --once exits without acting")
                    return None
                stop.wait(1.0)
                continue
            now = autoscaler.clock()
            epoch = autoscaler.epoch_at(now)
            try:
                if epoch != done_epoch:
                    last = autoscaler.run_epoch(epoch)
                    done_epoch = epoch
                    if on_report is not None:
                        on_report(last)
                    if once:
                        return last
                else:
                    autoscaler.tick()
                backoff_s = 0.0
            except AdapterError as exc:
                backoff_s = r["min_s"] if backoff_s == 0.0 else min(backoff_s * 2.0, r["max_s"])
                autoscaler.metrics.autoscaler_api_retries_total.labels(phase="epoch").inc()
                log.warning("epoch %d: %s; retrying in %.1f s", epoch, exc, backoff_s)
                if stop.wait(backoff_s):
                    break
                continue
            wait_s = min(interval_s, autoscaler.seconds_to_next_epoch(autoscaler.clock()))
            stop.wait(max(autoscaler.real_s(wait_s), 0.05))
    finally:
        elector.release()
        autoscaler.metrics.autoscaler_leader.set(0.0)
    return last
