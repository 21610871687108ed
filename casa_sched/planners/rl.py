"""RL: tabular Q-learning of each function's concurrency limit (Schuler, Jamil and Kühl, CCGrid 2021).

The agent learns, per function, the per-pod concurrency limit that Knative's KPA then turns into
replicas (target = 0.7 × limit). Settings from the paper as summarised in notes/baselines.md:
α = 0.5, γ = 0.9, ε-greedy from 1 decaying × 0.995 per decision to 0.1; actions −step / 0 /
+step on the limit; state = (limit, utilisation bucket); reward = the function's goodput
(share of requests served within deadline) relative to the best it has seen, 1 within 5 %.

Stated deviations: the paper's limits (10..310 by 20) are for its pods; one of our size-1
containers runs at most 20 requests at once, so limits span 2..20 by 2 here. Reward is on
goodput because under an open-loop trace raw throughput just follows arrivals. Training runs on
held-out epochs through the real simulator (:meth:`RLPlanner.train`), then the table is frozen
and the policy acts greedily. One Q-table per function does not scale to large clusters with
hundreds of functions (the CASA paper reports RL failing at 16-32 nodes); here it runs, but
functions never seen in training fall back to KPA's default limit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from casa_sched.plan import Plan
from casa_sched.planners.base import ClusterSnapshot, PlannerConfig, register
from casa_sched.planners.common import free_units, peak_concurrency, to_plan
from casa_sched.planners.kpa import kpa_replicas, round_robin
from casa_sched.simulator.forecast import EpochSignals, Forecast
from casa_sched.simulator.results import EpochResult

LIMITS = tuple(range(2, 21, 2))
ACTIONS = (-1, 0, 1)  # index steps on LIMITS
UTIL_BUCKETS = (0.25, 0.5, 0.75, 1.0)
ALPHA, GAMMA = 0.5, 0.9
EPS_START, EPS_DECAY, EPS_MIN = 1.0, 0.995, 0.1
DEFAULT_LIMIT_INDEX = len(LIMITS) - 1  # KPA default: the container's full concurrency


def q_update(q: float, reward: float, next_best: float) -> float:
    """``Q ← Q + α (r + γ · max_a' Q(s', a') − Q)``."""
    return q + ALPHA * (reward + GAMMA * next_best - q)


def reward_of(goodput: float, best: float) -> float:
    """Goodput relative to the best seen; 1 within 5 % of it."""
    if best <= 0:
        return 1.0
    ratio = goodput / best
    return 1.0 if ratio >= 0.95 else ratio


@dataclass
class _Agent:
    q: np.ndarray = field(default_factory=lambda: np.zeros((len(LIMITS), len(UTIL_BUCKETS) + 1, len(ACTIONS))))
    limit_index: int = DEFAULT_LIMIT_INDEX
    state: tuple[int, int] | None = None
    action: int = 1
    best_goodput: float = 0.0


def _bucket(utilisation: float) -> int:
    return int(np.searchsorted(UTIL_BUCKETS, utilisation))


@register("rl")
class RLPlanner:
    name = "rl"

    def __init__(self, seed: int = 0) -> None:
        self.agents: dict[str, _Agent] = {}
        self.rng = np.random.default_rng(seed)
        self.epsilon = EPS_START
        self.learning = True
        self.trained_epochs = 0
        self._util: dict[str, float] = {}

    # -- learning --------------------------------------------------------------------------------
    def train(self, episodes: Sequence[Callable[[RLPlanner], None]]) -> None:
        """Run training episodes (each plans and simulates held-out epochs), then freeze."""
        self.learning = True
        for episode in episodes:
            episode(self)
        self.learning = False
        self.epsilon = 0.0

    def observe(self, result: EpochResult) -> None:
        if not self.learning:
            return
        for fid, stats in result.functions.items():
            agent = self.agents.get(fid)
            if agent is None or agent.state is None or stats.requests == 0:
                continue
            goodput = stats.served / stats.requests
            agent.best_goodput = max(agent.best_goodput, goodput)
            r = reward_of(goodput, agent.best_goodput)
            s_next = (agent.limit_index, _bucket(self._util.get(fid, 0.0)))
            li, ub = agent.state
            agent.q[li, ub, agent.action] = q_update(agent.q[li, ub, agent.action], r, float(agent.q[s_next].max()))
        self.trained_epochs += 1

    # -- acting ----------------------------------------------------------------------------------
    def plan(self, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals, config: PlannerConfig) -> Plan:
        p = snapshot.params
        peak = peak_concurrency(forecast)
        room = free_units(snapshot.cluster, p)
        layout: dict[str, list[tuple[int, int]]] = {}
        wanted: list[tuple[int, int]] = []  # (function, replicas)
        for f in np.argsort(-peak, kind="stable").tolist():
            if forecast.totals[f] <= 0:
                continue
            fid = forecast.function_ids[f]
            agent = self.agents.setdefault(fid, _Agent())
            limit = LIMITS[agent.limit_index]
            util = float(peak[f]) / max(kpa_replicas(float(peak[f]), limit) * limit, 1)
            state = (agent.limit_index, _bucket(util))
            if self.learning and self.rng.random() < self.epsilon:
                action = int(self.rng.integers(len(ACTIONS)))
            else:
                action = int(np.argmax(agent.q[state]))
            if self.learning:
                self.epsilon = max(EPS_MIN, self.epsilon * EPS_DECAY)
            agent.state, agent.action = state, action
            agent.limit_index = int(np.clip(agent.limit_index + ACTIONS[action], 0, len(LIMITS) - 1))
            limit = LIMITS[agent.limit_index]
            replicas = kpa_replicas(float(peak[f]), limit)
            self._util[fid] = float(peak[f]) / max(replicas * limit, 1)
            wanted.append((f, replicas))
        for i in round_robin([r for _, r in wanted]):
            n = int(np.argmax(room))
            if room[n] < 1:
                break  # the rest stay pending
            room[n] -= 1
            layout.setdefault(forecast.function_ids[wanted[i][0]], []).append((n, 1))
        return to_plan(forecast.epoch, snapshot.cluster, layout, snapshot.previous)
