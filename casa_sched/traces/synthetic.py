"""Synthetic workload shaped like the 500-function Azure Functions 2019 sample (the embedded default).

The main job must run without downloading any data, so the default workload is generated from a
handful of statistics of the real sample (the 500-function Azure Functions 2019 sample, 500
functions × 480 minutes, 08:00-16:00). Every constant below was computed once with
:func:`workload_statistics` on that sample loaded by :func:`casa_sched.traces.load_azure2019`
(T_ave floored at 1 ms); ``tests/traces/test_synthetic.py`` recomputes them from the real sample and
checks they still match.

The generator (:func:`synthetic_workload`), seeded and deterministic:

1. Per-function totals over the trace: the head — the sample's 5 largest totals, one head
   function per 100 (so 5 at n = 500, each of the 5 ten times at n = 5000; one function alone
   carries 63 % of the sample's invocations, and the busy-core figure hinges on the head) — is
   kept as it is; the other functions are drawn by jittered stratified sampling from the quantile
   table of log10(total) of the sample's other 495 functions. All totals are then scaled so the
   expected trace total is ``total_invocations``: by default what the sample's head and body
   give at these counts, i.e. the sample's 3,037,902 at n = 500 (R = 1) and the same invocations
   per head and per body function at any n, so the distribution of per-function rates does not
   depend on n. A lognormal fit of the mean rate (ln μ = -2.36, σ = 2.61 in ln(requests/min)) is
   reported too but is a poor fit in the tail, hence the table.
2. T_ave: jittered stratified sample of the sample's T_ave quantile table, paired with the totals
   through a Gaussian copula with the sample's Spearman rank correlation (-0.34: busy functions are
   short). Durations are then swapped between pairs of functions (marginals unchanged) until the
   expected busy cores Σ rate·T_ave are within 1 % of ``mean_busy_cores``: by default the sample's
   busy core-seconds per invocation times the expected invocations (53.2 cores at n = 500,
   docs/architecture.md "Models"; 532 at n = 5000).
3. Memory: jittered stratified sample of the memory quantile table, independent of the rest.
4. Triggers: the sample's mix, scaled to n by largest remainder, shuffled, independent of rate
   except that the head gets no timer trigger (the sample's 5 busiest are event/queue).
5. Per-minute counts: the sample's 8 h window is flat (hourly totals within ±5 % of their mean),
   so the mean rate is constant over the trace. Timer functions fire regularly
   (counts[t] = ⌊(t+1)·m + φ⌋ - ⌊t·m + φ⌋ for mean rate m per minute and a random phase φ; the
   sample's timers have median var/mean 0.03). Other functions are Poisson with a per-minute
   gamma-distributed rate multiplier of mean 1 and CV ``BURST_CV`` (a negative-binomial count:
   var = m + (CV·m)²), fitted as the median excess CV of the sample's non-timer functions with
   ≥ 1 request/min.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from casa_sched._typing import FloatArray
from casa_sched.traces.workload import DEFAULT_EPOCH_MIN, Seed, Workload, WorkloadError

#: Probabilities of the quantile tables below.
QUANTILE_PROBS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
                                     0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0)
#: How many of the largest functions are kept verbatim as the head (see step 1).
N_HEAD = 5

# ---- constants derived from the 500-function sample (see module docstring) ----------------------
# fmt: off
SAMPLE_N_FUNCTIONS = 500
SAMPLE_N_MINUTES = 480
SAMPLE_START_MINUTE = 480
SAMPLE_TOTAL_INVOCATIONS = 3_037_902
#: Invocations of the 5 busiest functions over the 480 minutes, descending.
HEAD_TOTALS: tuple[int, ...] = (1_915_521, 273_379, 178_604, 95_814, 74_976)
#: log10(invocations over 480 min) of the other 495 functions at QUANTILE_PROBS (numpy "linear").
BODY_LOG10_TOTAL_QUANTILES: tuple[float, ...] = (
    0.0, 0.0, 0.0, 0.301, 0.6021, 0.9031, 0.9031, 1.1731, 1.3617, 1.5051, 1.6812,
    1.9703, 1.9823, 1.9823, 2.0792, 2.2199, 2.4448, 2.6812, 2.9181, 3.5495, 4.4385, 4.7715)
#: log10(T_ave / ms) of all 500 functions at QUANTILE_PROBS (T_ave floored at 1 ms; "linear").
LOG10_T_AVE_MS_QUANTILES: tuple[float, ...] = (
    0.0, 0.4771, 1.3222, 1.578, 1.8475, 1.9989, 2.1399, 2.2765, 2.4323, 2.576, 2.7536,
    2.8801, 3.0115, 3.1153, 3.2511, 3.4241, 3.555, 3.7863, 4.082, 4.4424, 5.0623, 5.4779)
#: log10(memory / MB) at QUANTILE_PROBS ("linear").
LOG10_MEMORY_MB_QUANTILES: tuple[float, ...] = (
    0.2152, 0.7455, 0.9586, 1.1661, 1.2908, 1.3783, 1.4487, 1.5363, 1.5984, 1.6668, 1.7597,
    1.8129, 1.917, 1.9823, 2.0531, 2.0969, 2.138, 2.2268, 2.2625, 2.2989, 2.3965, 2.6075)
#: Trigger mix (the sample's published mix: timer 247, http 139, queue 69, orchestration 25, event 14, storage 5, others 1).
TRIGGER_COUNTS: Mapping[str, int] = {"timer": 247, "http": 139, "queue": 69, "orchestration": 25,
                                     "event": 14, "storage": 5, "others": 1}
#: Spearman rank correlation between a function's total invocations and its T_ave.
RANK_CORR_TOTAL_T_AVE = -0.3375
#: Median over non-timer functions with ≥ 1 request/min of sqrt(max(var - mean, 0)) / mean of the
#: per-minute counts: the CV of the rate beyond Poisson noise.
BURST_CV = 0.3109
#: Σ over requests of T_ave / 28,800 s, cores (docs/architecture.md "Models": about 53).
SAMPLE_MEAN_BUSY_CORES = 53.212
#: Active functions per 15-minute epoch: min, mean, max over the 32 epochs (docs/architecture.md "Models": 268-344).
SAMPLE_ACTIVE_PER_EPOCH: tuple[int, float, int] = (268, 296.16, 344)
#: Peak busy cores over the 480 minutes (docs/architecture.md "Models": 128 at the busiest minute).
SAMPLE_PEAK_BUSY_CORES = 127.783
#: Std/mean of the trace-wide invocations per minute.
SAMPLE_MINUTE_TOTAL_CV = 0.1002
# fmt: on


@dataclass(frozen=True, slots=True)
class WorkloadStatistics:
    """The statistics the synthetic generator is built from; computed by :func:`workload_statistics`."""

    n_functions: int
    n_minutes: int
    total_invocations: int
    head_totals: tuple[int, ...]
    body_log10_total_quantiles: tuple[float, ...]
    log10_t_ave_ms_quantiles: tuple[float, ...]
    log10_memory_mb_quantiles: tuple[float, ...]
    trigger_counts: dict[str, int]
    rank_corr_total_t_ave: float
    burst_cv: float
    mean_busy_cores: float
    peak_busy_cores: float
    active_per_epoch: tuple[int, float, int]
    lognormal_ln_rate_mu: float
    lognormal_ln_rate_sigma: float
    t_ave_ms_p10_p50_p90_p99: tuple[float, float, float, float] = field(default=(0.0, 0.0, 0.0, 0.0))
    minute_total_cv: float = 0.0


def workload_statistics(workload: Workload, epoch_min: int = DEFAULT_EPOCH_MIN) -> WorkloadStatistics:
    """The generator's input statistics of ``workload`` (pure). See the module docstring."""
    totals = workload.totals()
    if workload.n_functions <= N_HEAD or workload.n_minutes == 0:
        raise WorkloadError(f"need more than {N_HEAD} functions and at least 1 minute for statistics")
    order = np.argsort(-totals, kind="stable")
    head = totals[order[:N_HEAD]]
    body = totals[order[N_HEAD:]]
    probs = np.asarray(QUANTILE_PROBS)
    log_body = np.log10(np.maximum(body, 1))
    t_ms = workload.t_ave_s * 1000.0
    counts = workload.counts.astype(np.float64)
    mean = counts.mean(axis=1)
    var = counts.var(axis=1)
    is_timer = np.asarray([t == "timer" for t in workload.triggers])
    busy = ~is_timer & (mean >= 1.0)
    excess_cv = np.sqrt(np.maximum(var[busy] - mean[busy], 0.0)) / mean[busy]
    ln_rate = np.log(np.maximum(totals, 1) / workload.n_minutes)
    active = workload.active_per_epoch(epoch_min)
    per_minute = workload.counts.sum(axis=0).astype(np.float64)
    busy_cores = workload.busy_cores()
    triggers: dict[str, int] = {}
    for t in workload.triggers:
        triggers[t] = triggers.get(t, 0) + 1
    p = np.quantile(t_ms, [0.1, 0.5, 0.9, 0.99], method="inverted_cdf")
    return WorkloadStatistics(
        n_functions=workload.n_functions,
        n_minutes=workload.n_minutes,
        total_invocations=workload.total_invocations,
        head_totals=tuple(int(x) for x in head),
        body_log10_total_quantiles=_rounded(np.quantile(log_body, probs)),
        log10_t_ave_ms_quantiles=_rounded(np.quantile(np.log10(t_ms), probs)),
        log10_memory_mb_quantiles=_rounded(np.quantile(np.log10(np.maximum(workload.memory_mb, 1e-3)), probs)),
        trigger_counts=dict(sorted(triggers.items(), key=lambda kv: (-kv[1], kv[0]))),
        rank_corr_total_t_ave=round(_spearman(totals.astype(np.float64), t_ms), 4),
        burst_cv=round(float(np.median(excess_cv)) if excess_cv.size else 0.0, 4),
        mean_busy_cores=round(workload.mean_busy_cores(), 3),
        peak_busy_cores=round(float(busy_cores.max()), 3),
        active_per_epoch=(int(active.min()), round(float(active.mean()), 2), int(active.max())),
        lognormal_ln_rate_mu=round(float(ln_rate.mean()), 4),
        lognormal_ln_rate_sigma=round(float(ln_rate.std()), 4),
        t_ave_ms_p10_p50_p90_p99=(float(p[0]), float(p[1]), float(p[2]), float(p[3])),
        minute_total_cv=round(float(per_minute.std() / per_minute.mean()), 4) if per_minute.sum() else 0.0,
    )


@dataclass(frozen=True, slots=True)
class SyntheticParams:
    """Knobs of the synthetic workload; the defaults reproduce the 500-function sample at R = 1."""

    #: Functions to generate; the per-function distributions (rates, T_ave, memory, triggers,
    #: burstiness) are the sample's at any count.
    n_functions: int = SAMPLE_N_FUNCTIONS
    n_minutes: int = SAMPLE_N_MINUTES
    start_minute: int = SAMPLE_START_MINUTE
    #: Expected invocations over the whole trace; None: the sample's invocations per head and per
    #: body function at ``n_functions`` (:func:`expected_invocations`; the sample's 8 h total at 500).
    total_invocations: float | None = None
    #: Expected Σ rate·T_ave, cores; None: the sample's busy core-seconds per invocation (53.212
    #: cores over its 3,037,902 invocations) times the expected invocations.
    mean_busy_cores: float | None = None
    #: Swap T_ave between functions until Σ rate·T_ave meets ``mean_busy_cores`` (False leaves the
    #: copula pairing as drawn).
    calibrate_busy: bool = True
    burst_cv: float = BURST_CV
    rank_corr_total_t_ave: float = RANK_CORR_TOTAL_T_AVE

    def __post_init__(self) -> None:
        if self.n_functions < 1:
            raise WorkloadError(f"n_functions must be >= 1, got {self.n_functions}")
        if not 1 <= self.n_minutes <= 1440:
            raise WorkloadError(f"n_minutes must be in 1..1440 min, got {self.n_minutes}")
        if not 0 <= self.start_minute <= 1440 - self.n_minutes:
            raise WorkloadError(f"start_minute must be in 0..{1440 - self.n_minutes}, got {self.start_minute}")
        if self.total_invocations is not None and not self.total_invocations > 0:
            raise WorkloadError(f"total_invocations must be > 0 or None, got {self.total_invocations}")
        if self.mean_busy_cores is not None and not self.mean_busy_cores > 0:
            raise WorkloadError(f"mean_busy_cores must be > 0 cores or None, got {self.mean_busy_cores}")

    @property
    def n_head(self) -> int:
        """Head functions (step 1): one per 100, at least one body function left."""
        return min(max(0, self.n_functions - 1), round(self.n_functions * N_HEAD / SAMPLE_N_FUNCTIONS))

    def expected_invocations(self) -> float:
        """``total_invocations``, or by default the sample's head totals (cycled over the head)
        plus its mean body total for each other function: 3,037,902 at 500 functions."""
        if self.total_invocations is not None:
            return self.total_invocations
        head = float(np.resize(np.asarray(HEAD_TOTALS, dtype=np.float64), self.n_head).sum())
        body = float(SAMPLE_TOTAL_INVOCATIONS - sum(HEAD_TOTALS))
        return head + body * (self.n_functions - self.n_head) / (SAMPLE_N_FUNCTIONS - N_HEAD)

    def expected_busy_cores(self) -> float:
        """``mean_busy_cores``, or the sample's busy cores per invocation times the expected invocations."""
        if self.mean_busy_cores is not None:
            return self.mean_busy_cores
        return SAMPLE_MEAN_BUSY_CORES * (self.expected_invocations() / SAMPLE_TOTAL_INVOCATIONS)
        if self.burst_cv < 0:
            raise WorkloadError(f"burst_cv must be >= 0, got {self.burst_cv}")
        if not -1.0 <= self.rank_corr_total_t_ave <= 1.0:
            raise WorkloadError(f"rank_corr_total_t_ave must be in -1..1, got {self.rank_corr_total_t_ave}")


def synthetic_workload(params: SyntheticParams | None = None, seed: Seed = 0) -> Workload:
    """A workload shaped like the 500-function Azure sample (see the module docstring). Pure, seeded."""
    p = params or SyntheticParams()
    rng = np.random.default_rng(seed)
    n, minutes = p.n_functions, p.n_minutes

    # 1. Totals: head verbatim (the sample's 5, cycled), body from the quantile table.
    n_head = p.n_head
    head = np.resize(np.asarray(HEAD_TOTALS, dtype=np.float64), n_head)
    body = 10.0 ** _stratified(BODY_LOG10_TOTAL_QUANTILES, n - n_head, rng)
    totals = np.concatenate([head, body])
    totals *= p.expected_invocations() / totals.sum()
    rate = totals / minutes  # expected requests per minute

    # 2. T_ave, paired with the totals through a Gaussian copula.
    t_ms_sorted = np.sort(10.0 ** _stratified(LOG10_T_AVE_MS_QUANTILES, n, rng))
    r = 2.0 * np.sin(np.pi * p.rank_corr_total_t_ave / 6.0)  # Spearman -> Pearson for a Gaussian copula
    z_total = rng.standard_normal(n)
    z_t = r * z_total + np.sqrt(max(0.0, 1.0 - r * r)) * rng.standard_normal(n)
    order_total = np.argsort(z_total)
    rate_sorted = np.sort(rate)
    rate = np.empty(n)
    rate[order_total] = rate_sorted
    t_ms = np.empty(n)
    t_ms[np.argsort(z_t)] = t_ms_sorted
    t_s = np.maximum(t_ms / 1000.0, 0.001)
    if p.calibrate_busy:
        t_s = _calibrate_busy(rate, t_s, p.expected_busy_cores(), rng)

    # 3. Memory, 4. triggers.
    memory_mb = rng.permutation(10.0 ** _stratified(LOG10_MEMORY_MB_QUANTILES, n, rng))
    triggers = rng.permutation(np.asarray(_apportion(TRIGGER_COUNTS, n), dtype=object))
    # The sample's 5 busiest functions are event/queue triggered, none a timer: give the head a
    # non-timer trigger by swapping with a body function (the mix is unchanged).
    rank = np.argsort(-rate, kind="stable")
    for i in rank[:n_head]:
        if triggers[i] == "timer":
            body_other = [j for j in rank[n_head:] if triggers[j] != "timer"]
            if body_other:
                j = body_other[int(rng.integers(len(body_other)))]
                triggers[i], triggers[j] = triggers[j], triggers[i]
    is_timer = triggers == "timer"

    # 5. Per-minute counts.
    counts = np.empty((n, minutes), dtype=np.int64)
    t = np.arange(minutes + 1, dtype=np.float64)
    phase = rng.random(n)
    cum = np.floor(rate[is_timer, None] * t[None, :] + phase[is_timer, None])
    counts[is_timer] = np.diff(cum, axis=1).astype(np.int64)
    lam = np.repeat(rate[~is_timer, None], minutes, axis=1)
    if p.burst_cv > 0:
        shape = 1.0 / (p.burst_cv * p.burst_cv)
        lam *= rng.gamma(shape, 1.0 / shape, size=lam.shape)
    counts[~is_timer] = rng.poisson(lam)

    ids = tuple(f"syn-{i:04d}" for i in range(n))
    return Workload(
        function_ids=ids,
        counts=counts,
        start_minute=p.start_minute,
        t_ave_s=t_s,
        memory_mb=memory_mb,
        triggers=tuple(str(x) for x in triggers),
        source=f"synthetic (Azure 2019 sample-shaped, n={n}, {minutes} min, seed={seed!r})",
    )


# ---- helpers -------------------------------------------------------------------------------------


def _rounded(values: npt.ArrayLike) -> tuple[float, ...]:
    return tuple(round(float(v), 4) for v in np.asarray(values, dtype=np.float64))


def _spearman(x: FloatArray, y: FloatArray) -> float:
    rx = _ranks(x)
    ry = _ranks(y)
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(x: FloatArray) -> FloatArray:
    """Average ranks (ties share their mean rank), as scipy.stats.rankdata does."""
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    ranks = np.empty(x.size)
    ranks[order] = np.arange(1, x.size + 1, dtype=np.float64)
    _, first, counts = np.unique(sorted_x, return_index=True, return_counts=True)
    sums = np.add.reduceat(ranks[order], first)
    avg = np.repeat(sums / counts, counts)
    out = np.empty(x.size)
    out[order] = avg
    return out


def _stratified(quantiles: tuple[float, ...], k: int, rng: np.random.Generator) -> FloatArray:
    """k jittered stratified draws from the piecewise-linear quantile function at QUANTILE_PROBS."""
    if k <= 0:
        return np.zeros(0)
    u = (np.arange(k) + rng.random(k)) / k
    return np.interp(u, QUANTILE_PROBS, quantiles)


def _apportion(counts: Mapping[str, int], n: int) -> list[str]:
    """n labels in the proportions of ``counts`` (largest remainder; ties by the mapping's order)."""
    total = sum(counts.values())
    exact = {k: v * n / total for k, v in counts.items()}
    base = {k: int(np.floor(x)) for k, x in exact.items()}
    left = n - sum(base.values())
    for k in sorted(exact, key=lambda k: -(exact[k] - base[k]))[:left]:
        base[k] += 1
    return [k for k, v in base.items() for _ in range(v)]


def _calibrate_busy(rate: FloatArray, t_s: FloatArray, target: float, rng: np.random.Generator, *,
                    tol: float = 0.01, max_swaps: int = 1000) -> FloatArray:
    """Swap T_ave between pairs until Σ rate·T_ave / 60 is within ``tol`` of ``target`` cores.

    Each step takes the function whose T_ave most moves the sum (the largest contributor when too
    high, the busiest function with a short T_ave when too low) and swaps its T_ave with the partner
    that brings the sum closest to the target. Swaps keep the T_ave distribution exactly.
    """
    t = t_s.copy()
    per_min = rate / 60.0
    busy = float(per_min @ t)
    for _ in range(max_swaps):
        if abs(busy - target) <= tol * target:
            break
        if busy > target:
            i = int(np.argmax(per_min * t))
        else:
            headroom = per_min * (t.max() - t)
            i = int(np.argmax(headroom + 1e-12 * rng.random(t.size)))
        delta = (per_min[i] - per_min) * (t - t[i])  # change in busy if i and j swap
        j = int(np.argmin(np.abs(busy + delta - target)))
        if abs(busy + delta[j] - target) >= abs(busy - target):
            break
        t[i], t[j] = t[j], t[i]
        busy += float(delta[j])
    return t
