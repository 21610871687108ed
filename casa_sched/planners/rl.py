"""RL: tabular Q-learning of each function's concurrency limit (Schuler, Jamil and Kühl, CCGrid 2021).

Source: L. Schuler, S. Jamil, N. Kühl, "AI-based Resource Allocation: Reinforcement Learning for
Adaptive Auto-scaling in Serverless Environments", CCGrid 2021 (CASA's ref. [14]). Each
function has its own agent that learns Knative's per-revision concurrency limit L
(containerConcurrency); the Knative Pod Autoscaler underneath
turns it into replicas with target 0.7 × L: ``ceil(peak-minute concurrency / (0.7 · L))``
size-1 pods (as :mod:`.score`; none for functions with no forecast requests), placed by the
default kube-scheduler scoring (:func:`._kpa.kube_schedule`).

Faithful: actions −20 / 0 / +20 on L within 10..310 (16 limits); state = (L, utilisation
bucket), utilisation = the epoch's mean concurrency over the planned pods' slots, in buckets
< 0.25, < 0.5, < 0.75, < 1, ≥ 1; α = 0.5, γ = 0.9; ε-greedy from 1, × 0.995 per decision, floor
0.1; reward = throughput relative to the best seen by the agent, 1 within 5 % of it.

Stated deviations:

- one decision per function per epoch (the plan is per epoch), not every 30-60 s;
- reward on goodput — the share of the function's requests completed within their deadline —
  since under an open-loop trace raw throughput just follows arrivals;
- ε decays per decision over all agents together (one schedule for the planner), so exploration
  ends after ~460 decisions (1-2 training epochs at the sample's ~300 active functions) and the
  rest of training refines the values along the exploited path; the paper's single agent had
  thousands of decisions to itself;
- a pod's resources are fixed (one unit, 20 slots at 0.1 core per request) as in Knative; a
  limit above 20 admits requests that then wait in the function's FIFO queue, exactly as our
  simulator queues them, but the limit 10 cannot throttle a pod below its 20 slots (this
  favours RL slightly);
- the paper's state also has memory utilisation, which our model does not vary.

Training (:meth:`RLPlanner.train`) runs episodes that plan and simulate held-out epochs through
the real simulator (the runner's ``training_episodes``: the epochs after the evaluated ones, or
the evaluated ones with another arrival seed), then freezes the tables: evaluation is greedy
and never updates them. Exploration draws from ``numpy.random.default_rng(seed)`` (seed 0 by
default, fixed at construction). Scaling: the table is per function (16 × 5 × 3 values), so it
runs at any cluster size, but with hundreds of functions each table sees only as many updates
as there are training epochs (24 by default: 8 epochs × 3 passes), nowhere near enough to
visit its 240 entries; functions never seen in training act greedily on an all-zero table,
i.e. keep the starting limit L = 90 (action 0 is "stay" on ties), the grid point next to
Knative's default target of 0.7 × 100 = 70 concurrent requests per pod. The CASA paper reports RL failing to
produce results at 16-32 nodes; ours produces them, so report its numbers with that caveat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from casa_sched._typing import FloatArray
from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.plan import Plan
from casa_sched.contract.results import EpochResult
from casa_sched.contract.snapshot import ClusterSnapshot, PlannerConfig
from casa_sched.planners._common import mean_concurrency, peak_concurrency, to_plan
from casa_sched.planners._kpa import kpa_replicas, kube_schedule
from casa_sched.planners.base import Episode, PlannerBase

LIMITS = tuple(range(10, 311, 20))  # concurrency limits 10, 30, …, 310
ACTIONS = (0, -1, 1)  # steps on LIMITS (±20 requests); "stay" first so all-zero rows keep L
UTIL_BUCKETS = (0.25, 0.5, 0.75, 1.0)
ALPHA, GAMMA = 0.5, 0.9
EPS_START, EPS_DECAY, EPS_MIN = 1.0, 0.995, 0.1
GOOD_ENOUGH = 0.95  # reward 1 within 5 % of the best goodput seen
DEFAULT_LIMIT_INDEX = 4  # L = 90 → target 63, next to Knative's default target 0.7 × 100 = 70


def q_update(q: float, reward: float, next_best: float) -> float:
    """``Q ← Q + α (r + γ · max_a' Q(s', a') − Q)``."""
    return q + ALPHA * (reward + GAMMA * next_best - q)


def reward_of(goodput: float, best: float) -> float:
    """Goodput relative to the best seen; 1 within 5 % of it."""
    if best <= 0:
        return 1.0
    ratio = goodput / best
    return 1.0 if ratio >= GOOD_ENOUGH else ratio


def util_bucket(utilisation: float) -> int:
    """0..4: utilisation below 0.25, 0.5, 0.75, 1, or at least 1."""
    return int(np.searchsorted(UTIL_BUCKETS, utilisation, side="right"))


def _new_table() -> FloatArray:
    return np.zeros((len(LIMITS), len(UTIL_BUCKETS) + 1, len(ACTIONS)))


@dataclass
class _Agent:
    """One function's Q-table and its last decision (explicit runtime state)."""

    q: FloatArray = field(default_factory=_new_table)
    limit_index: int = DEFAULT_LIMIT_INDEX
    state: tuple[int, int] | None = None
    action: int = 0
    slots: int = 0  # planned pods × slots, for the observed utilisation
    t_ave_s: float = 0.0
    epoch_s: float = 0.0  # the length of the epoch it decided for
    best_goodput: float = 0.0


class RLPlanner(PlannerBase):
    """Per-function tabular Q-learning of the KPA concurrency limit."""

    name = "rl"

    def __init__(self, config: PlannerConfig, seed: int = 0) -> None:
        super().__init__(config)
        self.agents: dict[str, _Agent] = {}
        self.rng = np.random.default_rng(seed)
        self.epsilon = EPS_START
        self.learning = True
        self.trained_epochs = 0
        self.decisions = 0

    # -- learning --------------------------------------------------------------------------------
    def train(self, episodes: Sequence[Episode]) -> None:
        """Run training episodes (each plans and simulates held-out epochs, calling
        :meth:`plan` and :meth:`observe`), then freeze the tables for evaluation."""
        self.learning = True
        for episode in episodes:
            episode(self)
            for agent in self.agents.values():
                agent.state = None  # an episode's last decision has no successor in the next one
        self.learning = False

    def observe(self, result: EpochResult) -> None:
        """Q-update of every agent that decided for this epoch (only while training)."""
        if not self.learning:
            return
        for fid, stats in result.functions.items():
            agent = self.agents.get(fid)
            if agent is None or agent.state is None or stats.requests == 0:
                continue
            goodput = stats.served / stats.requests
            agent.best_goodput = max(agent.best_goodput, goodput)
            reward = reward_of(goodput, agent.best_goodput)
            util = stats.requests * agent.t_ave_s / agent.epoch_s / max(agent.slots, 1)
            s_next = (agent.limit_index, util_bucket(util))
            li, ub = agent.state
            agent.q[li, ub, agent.action] = q_update(
                float(agent.q[li, ub, agent.action]), reward, float(agent.q[s_next].max())
            )
            agent.state = None
        self.trained_epochs += 1

    # -- acting ----------------------------------------------------------------------------------
    def _act(self, agent: _Agent, state: tuple[int, int]) -> int:
        if self.learning:
            explore = self.rng.random() < self.epsilon
            self.epsilon = max(EPS_MIN, self.epsilon * EPS_DECAY)
            self.decisions += 1
            if explore:
                return int(self.rng.integers(len(ACTIONS)))
        return int(np.argmax(agent.q[state]))

    def plan(self, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals) -> Plan:
        p = snapshot.params
        peak = peak_concurrency(forecast)
        mean = mean_concurrency(forecast)
        totals = forecast.totals  # sums the counts: once, not per function
        order = [f for f in np.argsort(-peak, kind="stable").tolist() if totals[f] > 0]
        replicas: list[int] = []
        for f in order:
            agent = self.agents.setdefault(forecast.function_ids[f], _Agent())
            pods = kpa_replicas(float(peak[f]), LIMITS[agent.limit_index])
            state = (agent.limit_index, util_bucket(float(mean[f]) / (pods * p.slots_per_unit)))
            action = self._act(agent, state)
            agent.state, agent.action = state, action
            agent.limit_index = int(np.clip(agent.limit_index + ACTIONS[action], 0, len(LIMITS) - 1))
            pods = kpa_replicas(float(peak[f]), LIMITS[agent.limit_index])
            agent.slots, agent.t_ave_s, agent.epoch_s = pods * p.slots_per_unit, float(forecast.t_ave_s[f]), p.epoch_s
            replicas.append(pods)
        rng = np.random.default_rng([self.config.seed, forecast.epoch])
        layout = kube_schedule(snapshot, [forecast.function_ids[f] for f in order], replicas, "least", rng)
        assert layout is not None  # no deadline
        return to_plan(self.name, snapshot, forecast, signals, layout)
