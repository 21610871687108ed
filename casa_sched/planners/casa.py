"""CASA: dual-objective local search over container plans (paper §V, Fig. 7).

Start from the previous epoch's plan D_{e-1} (restricted to the functions forecast to run); two
empty blacklists B_SL, B_CA; then, while iterations < ``gen`` and the wall-clock budget lasts:

- if the predicted SL_ave exceeds Cstr, run one **SLO-optimizer** local search: take the
  function with the most predicted violations (re-sorted after every search, skipping B_SL),
  try adding a container, growing one, right-sizing it to its forecast peak, and moving a
  container to another node; accept the candidate with the lowest SL_ave if it lowers SL_ave
  (the average over all functions, not just this function's rate);
- otherwise run one **carbon-optimizer** local search: visit functions in descending request
  intensity (a fixed order, skipping B_CA); try removing a container, shrinking one, removing
  all (scale to zero) and consolidating a container onto a busier node; accept the candidate
  with the lowest carbon under the epoch's CI if it lowers carbon.

A function whose search fails to improve K times goes on that optimizer's blacklist. The plan
returned is the best one seen that meets Cstr (lowest carbon), else the lowest SL_ave.

Choices where the paper is silent (documented and tested):
- Anytime from a safe start: the search starts from the best, by the estimator and the order
  of :func:`_key`, of D_{e-1} (restricted to the functions forecast to run), the bin-packing
  plan, the Score plan (KPA-sized, bound by kube-scheduler's scoring; built only if it is
  done within a quarter of the budget) and that Score plan folded, each function's replicas in
  the fewest containers of the same units (from an empty cluster every container is new and a
  node's new containers share its image link, eq. 8, so Score's many one-unit replicas keep all
  functions cold for the node's whole transfer; the SLO optimizer's moves add or grow capacity
  and cannot take that many containers away), and the incumbent is replaced only by a plan with a lower key, so a search cut at any
  iteration returns a plan rated no worse than that start. The wall-clock budget covers the
  estimator's set-up, the safe start, the search and validation. A validation replays every
  forecast request, so its wall time is predicted from the request count (seconds per request
  as this planner last measured, else :data:`VALIDATION_S_PER_REQUEST`); validations take at
  most half the budget left after the safe start, one that cannot fit is skipped and its time
  searched. A search step still evaluating candidates at the deadline is abandoned whole
  (nothing committed, no failure counted), so a step's cost bounds the overrun to one
  candidate evaluation (``benchmarks/planner_scale.py --budget`` measures it).
- Candidates are scored with the fast :class:`~casa_sched.simulator.estimator.Estimator`, not
  the request-level simulator (which the paper's 3-minute budget allowed; ours is seconds).
- Among carbon-lowering candidates the carbon optimizer prefers one that keeps SL_ave ≤ Cstr,
  falling back to the lowest-carbon one (after which CASA switches back, as in Fig. 7).
- The carbon optimizer never pushes the searched function's own predicted violation rate above
  max(Cstr, its current rate). SL_ave is an unweighted mean over functions, so without this
  guard the cheapest carbon move is to starve the busiest function (one function carries 63 %
  of the sample's requests): SL_ave barely moves while a large share of all requests is
  dropped. The paper's introduction states the constraint per request type, which the guard
  follows.
- A search ends the loop early when every function is blacklisted for the optimizer that
  would run next (nothing left to try).
- Node power states (with ``cluster.sleep_empty_nodes``, power management): CASA owns them and
  plans ``Plan.sleeping_nodes``. The carbon optimizer's moves for a function also include
  emptying the least-allocated awake node that hosts it or is empty (the next one when that was
  tried on the current plan already), and putting it to sleep: each container there is merged
  into the same function's container on another awake node if that one may grow (resized in
  place: no new container, so no image pull), else moves to the awake node with the fewest new
  containers (their image pulls share its link, eq. 8) and then the least room that fits it, or
  is removed if none fits. The move is scored and accepted like the others (lower carbon under the
  epoch's CI, SL_ave ≤ Cstr preferred, no changed function's own rate above max(Cstr, its
  current rate)). The SLO optimizer's moves also include waking a sleeping node and adding a
  container of the searched function there (sized to its forecast peak), accepted if it lowers
  SL_ave. Waking is the last resort (it costs P(0) − P_sleep for the epoch): it is tried only
  once no violating function's moves on the awake nodes lower SL_ave on the current plan. So with
  power management a function whose SLO search fails is not searched again until a move is
  accepted (the same plan would give the same answer) and the next one is searched instead;
  without it the paper's order holds (the function with the most violations, until it is
  blacklisted). Waking at the first function without an awake move undid most consolidations:
  after a sleep move every relocated function misses Cstr for a while, and the first of them
  that no awake move helped woke the node again. One node always stays awake.
- Move neighbourhoods are bounded on large clusters (the 4 emptiest and 4 fullest nodes) so
  one search stays O(containers + nodes).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.plan import Plan, PredictedMetrics
from casa_sched.contract.snapshot import ClusterSnapshot, PlannerConfig
from casa_sched.planners._common import (
    binpack_layout,
    peak_concurrency,
    split_units,
    stamped_plan,
    to_plan,
    units_for,
)
from casa_sched.planners._kpa import kpa_score_layout
from casa_sched.planners.base import PlannerBase
from casa_sched.simulator import EpochRequests, Simulator
from casa_sched.simulator.estimator import Estimator, Layout, Prediction
from casa_sched.traces import Workload

_NEIGHBOURS = 4  # nodes tried per move on large clusters (emptiest / fullest)
#: Prior wall time of one validation per forecast request, s (arrival sampling and replay), used
#: until the planner has timed one: 0.25 µs was measured at N = 32 and 128 (R = 10·N) on the
#: 2-core reference machine (``benchmarks/planner_scale.py --budget``); twice that as a margin.
VALIDATION_S_PER_REQUEST = 0.5e-6
START_SCORE_SHARE = 0.25  # the Score safe start is built only within this share of the budget
VALIDATION_SHARE = 0.5  # validations take at most this share of the budget left after the safe start


@dataclass
class SearchTrace:
    """What one planning run did (for tests, benchmarks and the plan's provenance)."""

    iterations: int = 0
    slo_searches: int = 0
    carbon_searches: int = 0
    accepted: int = 0
    blacklisted_sl: int = 0
    blacklisted_ca: int = 0
    stopped_by: str = "gen"
    time_bound: bool = False  # the clock, not gen, ended a search round: the plan depends on machine speed
    validations: list[tuple[float, float]] = field(default_factory=list)  # (predicted, simulated) SL_ave
    validations_skipped: int = 0  # checks left out because their predicted wall time did not fit the budget
    start: str = ""  # the safe start chosen: previous (D_{e-1}), binpack or score
    start_candidates: list[str] = field(default_factory=list)  # the safe starts built and rated
    budget_s: float = 0.0  # this epoch's wall-clock budget (``planner.time_budget_s`` or the derived one)
    longest_step_s: float = 0.0  # the longest completed search iteration, s (a step the clock cuts is abandoned)
    phase_s: dict[str, float] = field(default_factory=dict)  # wall time per phase: setup, start, search, validate
    history: list[tuple[str, float, float]] = field(default_factory=list)  # (optimizer, SL_ave, carbon_g)


class Candidate(NamedTuple):
    """A plan seen during the search, its order key (:func:`_key`) and its prediction."""

    key: tuple[int, float, float, float]
    plan: Plan
    prediction: Prediction


class CasaPlanner(PlannerBase):
    """The CASA dual local search (SLO optimizer ⇄ carbon optimizer with blacklists).

    Plans from the forecast and D_{e-1} only, so outcomes are not fed back (the default
    ``observe``).
    """

    name = "casa"
    plans_node_power = True

    def __init__(
        self,
        config: PlannerConfig,
        validate_rounds: int = 2,
        validation_s_per_request: float = VALIDATION_S_PER_REQUEST,
    ) -> None:
        super().__init__(config)
        self.validate_rounds = validate_rounds
        self._trace = SearchTrace()
        # wall time of one validation per forecast request: the prior until the planner has timed one
        self.validation_s_per_request = validation_s_per_request

    @property
    def last_trace(self) -> SearchTrace:
        return self._trace

    def plan(self, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals) -> Plan:
        config = self.config
        started = time.perf_counter()
        trace = SearchTrace()
        trace.budget_s = config.budget_s(snapshot, forecast)
        deadline = started + trace.budget_s
        phase = trace.phase_s
        est = Estimator(snapshot.cluster, snapshot.params, forecast, signals, snapshot.previous, snapshot.water)
        phase["setup"] = time.perf_counter() - started
        mark = time.perf_counter()
        pred = self._safe_start(est, snapshot, forecast, signals, trace, started + START_SCORE_SHARE * trace.budget_s)
        best = Candidate(_key_of(est, pred, config), est.plan(forecast.epoch, snapshot.previous), pred)
        phase["start"] = time.perf_counter() - mark
        phase["search"] = phase["validate"] = 0.0
        validator: _Validator | None = None
        # The budget covers validation too. A check replays every forecast request, so its wall
        # time is predicted from the request count (seconds per request measured on this
        # planner's last validation, else the prior) and checks take at most half of what is
        # left: those that cannot fit are skipped up front and their search time kept.
        requests = float(forecast.totals.sum())
        per_check_s = self.validation_s_per_request * requests
        rounds = self.validate_rounds
        while rounds > 0 and rounds * per_check_s > VALIDATION_SHARE * (deadline - time.perf_counter()):
            rounds -= 1
        trace.validations_skipped = self.validate_rounds - rounds
        checked: list[Candidate] = []
        for rnd in range(rounds + 1):
            # Each round searches a share of what is left, then checks its best plan against the
            # request-level simulator on arrivals sampled from the forecast and calibrates.
            # Rounds share both budgets alike: iterations (``gen``, which makes a run reproducible
            # when it binds first) and wall-clock time (the deadline, which always holds).
            rounds_left = rounds + 1 - rnd
            share = (0.6 if rounds_left > 1 else 1.0) / rounds_left
            mark = time.perf_counter()
            until = mark + (deadline - mark) * share
            it_until = trace.iterations + math.ceil((config.gen - trace.iterations) * share)
            best = self._search(est, pred, best, snapshot, forecast, config, trace, min(until, deadline), it_until)
            phase["search"] += time.perf_counter() - mark
            if rnd == rounds:
                break
            if time.perf_counter() + per_check_s >= deadline:
                trace.validations_skipped += 1  # no check that cannot finish in time; search on
                continue
            check_started = time.perf_counter()
            if validator is None:
                validator = _Validator(snapshot, forecast, signals, config.seed)
            simulated, violators, dropped, pred = validator.calibrate(est, best.plan, config.cstr)
            validate_s = time.perf_counter() - check_started
            if not checked and requests > 0:  # the first check of a plan samples the arrivals too
                self.validation_s_per_request = validate_s / requests
            per_check_s = validate_s
            phase["validate"] += validate_s
            trace.validations.append((best.prediction.sl_ave, simulated))
            checked.append(
                Candidate(
                    _key(simulated, best.prediction.carbon_g, config.cstr, violators, dropped, config.max_drop_share),
                    best.plan,
                    best.prediction,
                )
            )
            best = Candidate(_key_of(est, pred, config), best.plan, pred)
        # A checked plan is preferred by its simulated outcome; the search's incumbent after the
        # last round is never worse than the safe start in the estimator's ordering.
        chosen = min(checked, key=lambda c: c.key) if checked else best
        self._trace = trace
        mark = time.perf_counter()
        out = self._finish(chosen.plan, chosen.prediction, snapshot, forecast, signals)
        phase["finish"] = time.perf_counter() - mark
        return out

    def _safe_start(
        self,
        est: Estimator,
        snapshot: ClusterSnapshot,
        forecast: Forecast,
        signals: EpochSignals,
        trace: SearchTrace,
        score_deadline: float,
    ) -> Prediction:
        """Load the best safe start the estimator sees, by :func:`_key`: D_{e-1} restricted to
        the forecast functions, the bin-packing plan (peak-sized, FFD) and the Score plan (KPA
        replica counts bound by kube-scheduler's scoring), the last only if it is built before
        ``score_deadline`` less twice the longest load so far (its own load and a reload of the
        best; binding tens of thousands of pods one by one takes a minute at N = 512 from an
        empty cluster), and the Score plan folded (:func:`_folded`: each function's replicas in
        the fewest containers), rated only if there is still time for its load and a reload. The
        search only replaces its incumbent by a plan with a
        lower key, so a cut at any moment returns a plan rated no worse than this start."""
        starts = {"previous": _warm_start(snapshot.previous, forecast)}
        starts["binpack"] = to_plan(self.name, snapshot, forecast, signals, binpack_layout(snapshot, forecast))
        best: tuple[tuple[int, float, float, float], str, Prediction] | None = None
        load_s = 0.0  # the longest load so far: the Score plan must leave time for its own and a reload
        last = ""  # the start the estimator holds
        rated: list[str] = []  # the starts built and rated, in order
        for name in ("previous", "binpack", "score", "score-folded"):
            if name == "score-folded":
                if name not in starts or time.perf_counter() >= score_deadline - 2.0 * load_s:
                    break  # no Score plan, or no time left to rate its folded form
            elif name == "score":
                by = score_deadline - 2.0 * load_s
                score = kpa_score_layout(snapshot, forecast, self.config.seed, deadline=by)
                if score is None or time.perf_counter() >= by:
                    break  # left out: not cheap enough for this budget
                starts["score"] = to_plan(self.name, snapshot, forecast, signals, score)
                starts["score-folded"] = to_plan(self.name, snapshot, forecast, signals, _folded(score, snapshot))
            mark = time.perf_counter()
            pred = est.load(starts[name])
            load_s, last = max(load_s, time.perf_counter() - mark), name
            rated.append(name)
            key = _key_of(est, pred, self.config)
            if best is None or key < best[0]:
                best = (key, name, pred)
        trace.start_candidates = rated
        assert best is not None
        trace.start = best[1]
        return best[2] if best[1] == last else est.load(starts[best[1]])

    def _search(
        self,
        est: Estimator,
        pred: Prediction,
        best: Candidate,
        snapshot: ClusterSnapshot,
        forecast: Forecast,
        config: PlannerConfig,
        trace: SearchTrace,
        until: float,
        it_until: int,
    ) -> Candidate:
        """Fig. 7's loop from the estimator's current plan until ``it_until`` iterations or the
        ``until`` clock; returns the best plan seen."""
        search = _Search(est, snapshot, forecast, config, until)
        while trace.iterations < it_until:
            step_started = time.perf_counter()
            if step_started >= until:
                trace.stopped_by = "time"
                trace.time_bound = True
                break
            slo_mode = search.needs_slo(pred)
            if slo_mode:
                moved = search.slo_step(pred)
                trace.slo_searches += 1
                kind = "slo"
            else:
                moved = search.carbon_step(pred)
                trace.carbon_searches += 1
                kind = "carbon"
            if search.cut:  # the clock ended this step: abandoned, the incumbent stands
                trace.stopped_by = "time"
                trace.time_bound = True
                break
            trace.iterations += 1
            trace.longest_step_s = max(trace.longest_step_s, time.perf_counter() - step_started)
            if moved is None:
                if search.exhausted(slo_mode):
                    trace.stopped_by = "blacklists"
                    break
                continue
            pred = moved
            trace.accepted += 1
            trace.history.append((kind, pred.sl_ave, pred.carbon_g))
            key = _key_of(est, pred, config)
            if key < best.key:
                best = Candidate(key, est.plan(forecast.epoch, snapshot.previous), pred)
        else:
            trace.stopped_by = "gen"
        trace.blacklisted_sl += len(search.b_sl)
        trace.blacklisted_ca += len(search.b_ca)
        return best

    def _finish(
        self, plan: Plan, predicted: Prediction, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals
    ) -> Plan:
        predicted_metrics = PredictedMetrics(
            carbon_g=predicted.carbon_g,
            energy_kwh=predicted.energy_kwh,
            cost_usd=predicted.cost_usd,
            slo_violation_rate=predicted.sl_ave,
            load=predicted.load,
        )
        return stamped_plan(
            self.name, snapshot, forecast, signals, plan.containers, predicted_metrics, plan.sleeping_nodes
        )


def _key(
    sl_ave: float,
    carbon_g: float,
    cstr: float,
    violators: int = 0,
    drop_share: float = 0.0,
    max_drop_share: float = 1.0,
) -> tuple[int, float, float, float]:
    """Order plans: feasible ones (SL_ave ≤ Cstr and the share of requests dropped within
    ``max_drop_share``) by how many functions still miss Cstr on their own, then by carbon;
    infeasible ones by SL_ave plus the drop share's excess over its bound."""
    excess = max(0.0, drop_share - max_drop_share)
    if sl_ave <= cstr + 1e-12 and excess <= 1e-12:
        return (0, float(violators), carbon_g, sl_ave)
    return (1, sl_ave + excess, carbon_g, 0.0)


def _key_of(est: Estimator, pred: Prediction, config: PlannerConfig) -> tuple[int, float, float, float]:
    """:func:`_key` of the estimator's current plan, predicted as ``pred``."""
    return _key(
        pred.sl_ave, pred.carbon_g, config.cstr, _violators(est, config.cstr), _drop_share(est), config.max_drop_share
    )


def _drop_share(est: Estimator) -> float:
    """Predicted share of all forecast requests that miss their deadline (request-weighted)."""
    total = float(est.totals.sum())
    return float(est.function_violations().sum()) / total if total > 0 else 0.0


def _violators(est: Estimator, cstr: float) -> int:
    """Functions whose own predicted violation rate exceeds Cstr."""
    return int(np.count_nonzero(est.function_rates() > cstr + 1e-9))


class _Validator:
    """Checks a candidate plan with the request-level simulator and calibrates the estimator.

    Arrivals are sampled once from the forecast's per-minute counts (seeded), D_{e-1} is
    installed warm, and the epoch is replayed. The difference between the simulated and the
    predicted violations of each function becomes a per-function correction in the estimator
    (one for while the function has containers, one for while it scales from zero).
    """

    def __init__(self, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals, seed: int) -> None:
        self.snapshot = snapshot
        self.forecast = forecast
        counts = np.rint(forecast.counts).astype(np.int64)
        wl = Workload(
            function_ids=forecast.function_ids,
            counts=counts,
            start_minute=0,
            t_ave_s=forecast.t_ave_s,
            memory_mb=forecast.memory_mb,
            triggers=("unknown",) * len(forecast.function_ids),
            source="forecast",
        )
        arrivals = wl.arrivals_by_function(0, seed=[seed, forecast.epoch], epoch_min=forecast.minutes)
        self.requests = EpochRequests(0, 0.0, forecast.function_ids, forecast.t_ave_s, tuple(arrivals))
        self.signals = signals

    def calibrate(self, est: Estimator, plan: Plan, cstr: float) -> tuple[float, int, float, Prediction]:
        """Simulate ``plan``; returns its simulated SL_ave, how many functions missed Cstr there,
        the share of requests dropped and the estimator's calibrated prediction."""
        epoch_s = self.forecast.minutes * self.forecast.minute_s
        sim = Simulator(self.snapshot.cluster, self.snapshot.params, epoch_s, self.snapshot.water)
        if self.snapshot.previous is not None:
            sim.preload(_known_nodes(self.snapshot.previous, self.snapshot))
        result = sim.run_epoch(plan, self.requests, self.signals)
        calibrated = est.calibrate_from(result, plan)
        violators = sum(1 for st in result.functions.values() if st.requests and st.violation_rate > cstr + 1e-9)
        requests = sum(st.requests for st in result.functions.values())
        dropped = sum(st.dropped for st in result.functions.values())
        return result.slo_violation_rate, violators, dropped / requests if requests else 0.0, calibrated


def _folded(layout: dict[str, list[tuple[int, int]]], snapshot: ClusterSnapshot) -> dict[str, list[tuple[int, int]]]:
    """Each function's units in the fewest containers (:func:`split_units`), same total: placed
    on the nodes that hold most of its units first, then on the nodes with the most free cores;
    a function whose folded containers do not fit gets one container per node it holds. New containers on a node share
    its image link (eq. 8), so from an empty cluster a plan of many one-unit replicas (Score's)
    keeps every function cold for as long as the node's whole transfer takes; folded, the same
    units start after a fraction of it (and idle on fewer containers' overheads)."""
    params = snapshot.params
    unit = params.base_cpu_cores
    free = np.array([float(n.cores) for n in snapshot.cluster.nodes])
    for cs in layout.values():
        for n, k in cs:
            free[n] -= k * unit
    out: dict[str, list[tuple[int, int]]] = {}
    for f, cs in layout.items():
        sizes = split_units(sum(k for _, k in cs), params)
        out[f] = list(cs)
        if len(sizes) >= len(cs):
            continue
        room = free.copy()
        held: dict[int, int] = {}
        for n, k in cs:
            room[n] += k * unit
            held[n] = held.get(n, 0) + k
        own = sorted(held, key=lambda n: (-held[n], n))
        folded: list[tuple[int, int]] = []
        for k in sizes:
            fits = [n for n in own if room[n] >= k * unit - 1e-9]
            n = fits[0] if fits else int(np.argmax(room))
            if room[n] < k * unit - 1e-9:
                break
            room[n] -= k * unit
            folded.append((n, k))
        if len(folded) < len(sizes):  # no room to gather them: one container per node it holds
            folded = [(n, k) for n in own for k in split_units(held[n], params)]
            room = free  # the same units on the same nodes
        if len(folded) < len(cs):
            out[f], free = folded, room
    return out


def _known_nodes(plan: Plan, snapshot: ClusterSnapshot) -> Plan:
    names = set(snapshot.cluster.node_names)
    return Plan(
        epoch=plan.epoch,
        containers={f: tuple(c for c in cs if c.node in names) for f, cs in plan.containers.items()},
        sleeping_nodes=tuple(n for n in plan.sleeping_nodes if n in names),
    )


def _warm_start(previous: Plan | None, forecast: Forecast) -> Plan:
    """D_{e-1} restricted to functions forecast to have requests in this epoch."""
    if previous is None:
        return Plan(epoch=forecast.epoch, containers={})
    active = {f for f, n in zip(forecast.function_ids, forecast.totals, strict=True) if n > 0}
    return Plan(
        epoch=forecast.epoch,
        containers={f: cs for f, cs in previous.containers.items() if f in active},
        epoch_start=previous.epoch_start,
        sleeping_nodes=previous.sleeping_nodes,
    )


class _Search:
    """State of one planning run: blacklists, failure counts, the carbon optimizer's cursor."""

    def __init__(
        self,
        est: Estimator,
        snapshot: ClusterSnapshot,
        forecast: Forecast,
        config: PlannerConfig,
        until: float = math.inf,
    ) -> None:
        self.est = est
        self.until = until  # perf_counter() clock: a step still evaluating candidates then is abandoned
        self.cut = False
        self.params = snapshot.params
        self.config = config
        self.n_nodes = len(snapshot.cluster.nodes)
        self.power_managed = snapshot.cluster.sleep_empty_nodes
        self.commits = 0  # accepted moves so far: a sleep move is not retried on the same plan
        self.sleep_tried: dict[int, int] = {}
        self.active = np.flatnonzero(forecast.active())
        self.peak = peak_concurrency(forecast)
        # carbon optimizer: descending request intensity, fixed order
        self.by_intensity = [int(f) for f in self.active[np.argsort(-forecast.totals[self.active], kind="stable")]]
        self.cursor = 0
        self.b_sl: set[int] = set()
        self.b_ca: set[int] = set()
        self.fail_sl: dict[int, int] = {}
        self.fail_ca: dict[int, int] = {}
        self.awake_failed: set[int] = set()  # SLO searches that failed on the current plan
        self.wake_failed: set[int] = set()  # wake searches that failed on the current plan

    def needs_slo(self, pred: Prediction) -> bool:
        """Fig. 7's switch: SL_ave above Cstr, or (the constraint read per request type, as the
        paper's introduction states it) a function not yet blacklisted misses Cstr on its own."""
        if pred.sl_ave > self.config.cstr or _drop_share(self.est) > self.config.max_drop_share + 1e-12:
            return True
        rates = self.est.function_rates()
        return any(rates[f] > self.config.cstr + 1e-9 and f not in self.b_sl for f in self.active.tolist())

    def exhausted(self, slo_mode: bool) -> bool:
        blacklist = self.b_sl if slo_mode else self.b_ca
        return len(blacklist) >= len(self.active)

    # -- SLO optimizer ---------------------------------------------------------------------------
    def slo_step(self, pred: Prediction) -> Prediction | None:
        violations = self.est.function_violations()
        violating = [int(f) for f in self.active if violations[f] > 0]
        candidates = [f for f in violating if f not in self.b_sl and f not in self.awake_failed]
        if not candidates:
            # Waking is the last resort: tried only once no function's moves on the awake nodes
            # lower SL_ave on this plan (with power management each failed search moves on to the
            # next function instead of repeating itself on an unchanged plan).
            woken = self._wake_step(pred, violations, violating)
            if woken is None and not self.cut:
                stuck = [f for f in violating if f not in self.b_sl]
                self.b_sl.update(stuck if stuck else (int(f) for f in self.active))
            return woken
        f = max(candidates, key=lambda g: (violations[g], -g))
        best: tuple[float, float, Layout] | None = None
        for layout in self._slo_moves(f):
            if self._out_of_time():
                return None
            p = self.est.try_move(f, layout)
            if p.sl_ave < pred.sl_ave - 1e-12 and (best is None or (p.sl_ave, p.carbon_g) < best[:2]):
                best = (p.sl_ave, p.carbon_g, layout)
        if best is None:
            if self.power_managed:
                self.awake_failed.add(f)
            self._fail(f, self.fail_sl, self.b_sl)
            return None
        return self._committed(self.est.commit(f, best[2]))

    def _wake_step(self, pred: Prediction, violations: np.ndarray, violating: list[int]) -> Prediction | None:
        """Wake a sleeping node and add a container there for the violating function with the
        most violations whose wake has not been tried on this plan; ``None`` if none lowers SL_ave."""
        if not self.power_managed or not self.est.asleep_nodes():
            return None
        for f in sorted(violating, key=lambda g: (-violations[g], g)):
            if f in self.wake_failed:
                continue
            best: tuple[float, float, Layout, int] | None = None
            for node, layout in self._wake_moves(f):
                if self._out_of_time():
                    return None
                p, _ = self.est.try_nodes([(f, layout)], wake=(node,))
                if p.sl_ave < pred.sl_ave - 1e-12 and (best is None or (p.sl_ave, p.carbon_g) < best[:2]):
                    best = (p.sl_ave, p.carbon_g, layout, node)
            self.wake_failed.add(f)
            if best is not None:
                return self._committed(self.est.commit_nodes([(f, best[2])], wake=(best[3],)))
        return None

    def _committed(self, pred: Prediction) -> Prediction:
        """Count an accepted move: every function may be searched again on the new plan."""
        self.commits += 1
        self.awake_failed.clear()
        self.wake_failed.clear()
        return pred

    def _wake_moves(self, f: int) -> list[tuple[int, Layout]]:
        """Wake a sleeping node and add a container of ``f`` there, sized to its forecast peak."""
        if not self.power_managed:
            return []
        est, p = self.est, self.params
        layout = est.layout.get(f, ())
        want = units_for(float(self.peak[f]), p, headroom=1.2) - sum(k for _, k in layout)
        moves: list[tuple[int, Layout]] = []
        for n in est.asleep_nodes()[:_NEIGHBOURS]:
            size = min(max(want, 1), p.max_container_size, int(est.node_cores[n] // p.base_cpu_cores))
            if size >= 1:
                moves.append((n, (*layout, (n, size))))
        return moves

    def _slo_moves(self, f: int) -> list[Layout]:
        est, p = self.est, self.params
        layout = est.layout.get(f, ())
        free = est.free_cores()
        room = [n for n in range(self.n_nodes) if free[n] >= p.base_cpu_cores - 1e-9]
        moves: list[Layout] = []
        for n in self._pick(room, free, emptiest=True):  # add a container
            moves.append((*layout, (n, 1)))
        for i, (n, k) in enumerate(layout):  # grow one
            if k < p.max_container_size and free[n] >= p.base_cpu_cores - 1e-9:
                moves.append(_replace(layout, i, (n, k + 1)))
        want = units_for(float(self.peak[f]), p, headroom=1.2)  # right-size to the forecast peak
        have = sum(k for _, k in layout)
        if want > have:
            sized = _grow_to(layout, want - have, free.copy(), p.base_cpu_cores, p.max_container_size)
            if sized is not None:
                moves.append(sized)
        for i, (n, k) in enumerate(layout):  # move one off its node
            for m in self._pick(
                [m for m in room if m != n and free[m] >= k * p.base_cpu_cores - 1e-9], free, emptiest=True
            ):
                moves.append(_replace(layout, i, (m, k)))
        return moves

    # -- carbon optimizer ------------------------------------------------------------------------
    def carbon_step(self, pred: Prediction) -> Prediction | None:
        order = [f for f in self.by_intensity if f not in self.b_ca]
        if not order:
            return None
        f = order[self.cursor % len(order)]
        self.cursor += 1
        best_ok: tuple[float, _CarbonMove] | None = None
        best_any: tuple[float, _CarbonMove] | None = None
        rates_now = self.est.function_rates()
        cap = max(self.config.cstr, float(rates_now[f]))
        scored: list[tuple[Prediction, _CarbonMove]] = []
        for layout in self._carbon_moves(f):
            if self._out_of_time():
                return None
            p, rate = self.est.try_move_rate(f, layout)
            if rate <= cap + 1e-9:
                scored.append((p, ((f, layout),)))
        for node, changes in self._sleep_moves(f):
            if self._out_of_time():
                return None
            self.sleep_tried[node] = self.commits
            p, rates = self.est.try_nodes(changes, sleep=(node,))
            caps = np.maximum(self.config.cstr, rates_now)
            if all(rates[g] <= caps[g] + 1e-9 for g, _ in changes):
                scored.append((p, (*changes, (-1 - node, ()))))
        for p, move in scored:
            if p.carbon_g >= pred.carbon_g - 1e-9:
                continue
            if best_any is None or p.carbon_g < best_any[0]:
                best_any = (p.carbon_g, move)
            if p.sl_ave <= self.config.cstr and (best_ok is None or p.carbon_g < best_ok[0]):
                best_ok = (p.carbon_g, move)
        choice = best_ok or best_any
        if choice is None:
            self._fail(f, self.fail_ca, self.b_ca)
            return None
        move = choice[1]
        if move[-1][0] < 0:  # a node put to sleep
            return self._committed(self.est.commit_nodes(move[:-1], sleep=(-1 - move[-1][0],)))
        return self._committed(self.est.commit(*move[0]))

    def _sleep_moves(self, f: int) -> list[tuple[int, list[tuple[int, Layout]]]]:
        """Empty a node hosting ``f`` (or any awake empty node) and put it to sleep: the cheapest
        such node (fewest allocated units) not yet tried on this plan. Each container there is
        merged into the same function's container on an awake node when that one has room to
        grow (no new container, so no image pull, eq. 8), else moved to the awake node with the
        fewest new containers (their image pulls share its link, eq. 8) and then the least room
        that fits it, else removed."""
        est = self.est
        asleep = set(est.asleep_nodes())
        if not self.power_managed or self.n_nodes - len(asleep) <= 1:
            return []
        hosting = {n for n, _ in est.layout.get(f, ())}
        empty = {n for n in range(self.n_nodes) if n not in asleep and est.n_containers[n] == 0}
        untried = [n for n in hosting | empty if self.sleep_tried.get(n) != self.commits]
        if not untried:
            return []
        # the cheapest node to empty (one candidate per step keeps a step O(containers))
        n = min(untried, key=lambda n: (est.alloc_units[n], n))
        unit = self.params.base_cpu_cores
        max_size = self.params.max_container_size
        free = est.free_cores().copy()
        free[n] = 0.0
        new_on = est.n_new.copy()
        changes: list[tuple[int, Layout]] = []
        for g, lay in sorted(est.layout.items()):
            if all(m != n for m, _ in lay):
                continue
            out = [(m, k) for m, k in lay if m != n]
            for _, k in (c for c in lay if c[0] == n):
                grow = [i for i, (m, j) in enumerate(out) if j + k <= max_size and free[m] >= k * unit - 1e-9]
                if grow:
                    i = min(grow, key=lambda i: (free[out[i][0]], out[i][0]))
                    free[out[i][0]] -= k * unit
                    out[i] = (out[i][0], out[i][1] + k)
                    continue
                fits = [q for q in range(self.n_nodes) if free[q] >= k * unit - 1e-9]
                if fits:
                    q = min(fits, key=lambda q: (new_on[q], free[q], q))
                    free[q] -= k * unit
                    new_on[q] += 1
                    out.append((q, k))
            changes.append((g, tuple(out)))
        return [(n, changes)]

    def _carbon_moves(self, f: int) -> list[Layout]:
        est, p = self.est, self.params
        layout = est.layout.get(f, ())
        if not layout:
            return []
        moves: list[Layout] = [()]  # scale to zero: serve on demand
        for i in range(len(layout)):  # remove one
            if len(layout) > 1:
                moves.append(layout[:i] + layout[i + 1 :])
        for i, (n, k) in enumerate(layout):  # shrink one
            if k > 1:
                moves.append(_replace(layout, i, (n, k - 1)))
        free = est.free_cores()
        for i, (n, k) in enumerate(layout):  # consolidate onto a busier node
            busier = [
                m
                for m in range(self.n_nodes)
                if m != n and free[m] < free[n] and free[m] >= k * p.base_cpu_cores - 1e-9
            ]
            for m in self._pick(busier, free, emptiest=False):
                moves.append(_replace(layout, i, (m, k)))
        return moves

    # -- helpers ---------------------------------------------------------------------------------
    def _out_of_time(self) -> bool:
        """Past the clock: the step in progress is abandoned (nothing committed, no failure
        counted), so every accepted move is one the uncut search makes too."""
        self.cut = self.cut or time.perf_counter() >= self.until
        return self.cut

    def _fail(self, f: int, fails: dict[int, int], blacklist: set[int]) -> None:
        fails[f] = fails.get(f, 0) + 1
        if fails[f] >= self.config.k:
            blacklist.add(f)

    def _pick(self, nodes: list[int], free: np.ndarray, emptiest: bool) -> list[int]:
        if len(nodes) <= _NEIGHBOURS:
            return nodes
        ordered = sorted(nodes, key=lambda n: (-free[n], n) if emptiest else (free[n], n))
        return ordered[:_NEIGHBOURS]


# A carbon move: (function, layout) changes; a last entry (-1 - node, ()) puts that node to sleep.
_CarbonMove = tuple[tuple[int, Layout], ...]


def _replace(layout: Layout, i: int, item: tuple[int, int]) -> Layout:
    return (*layout[:i], item, *layout[i + 1 :])


def _grow_to(layout: Layout, extra: int, free: np.ndarray, unit_cores: float, max_size: int) -> Layout | None:
    """Add ``extra`` units: grow existing containers first, then new ones on the emptiest nodes."""
    out = list(layout)
    for i, (n, k) in enumerate(out):
        room = min(max_size - k, int(free[n] // unit_cores), extra)
        if room > 0:
            out[i] = (n, k + room)
            free[n] -= room * unit_cores
            extra -= room
    while extra > 0:
        n = int(np.argmax(free))
        room = min(max_size, int(free[n] // unit_cores), extra)
        if room <= 0:
            break
        out.append((n, room))
        free[n] -= room * unit_cores
        extra -= room
    return tuple(out) if tuple(out) != layout else None
