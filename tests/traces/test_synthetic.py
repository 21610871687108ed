"""The synthetic default: its embedded constants match the real sample, and it looks like it."""

from __future__ import annotations

import numpy as np
import pytest

from casa_sched.traces import AzureTrace, SyntheticParams, synthetic_workload, workload_statistics
from casa_sched.traces import synthetic as syn


def test_embedded_constants_match_the_real_sample(sample_trace: AzureTrace) -> None:
    s = workload_statistics(sample_trace.workload)
    assert s.total_invocations == syn.SAMPLE_TOTAL_INVOCATIONS
    assert (s.n_functions, s.n_minutes) == (syn.SAMPLE_N_FUNCTIONS, syn.SAMPLE_N_MINUTES)
    assert s.head_totals == syn.HEAD_TOTALS
    for got, want in (
        (s.body_log10_total_quantiles, syn.BODY_LOG10_TOTAL_QUANTILES),
        (s.log10_t_ave_ms_quantiles, syn.LOG10_T_AVE_MS_QUANTILES),
        (s.log10_memory_mb_quantiles, syn.LOG10_MEMORY_MB_QUANTILES),
    ):
        np.testing.assert_allclose(got, want, atol=1e-3)
    assert s.trigger_counts == dict(syn.TRIGGER_COUNTS)
    assert s.rank_corr_total_t_ave == pytest.approx(syn.RANK_CORR_TOTAL_T_AVE, abs=1e-3)
    assert s.burst_cv == pytest.approx(syn.BURST_CV, abs=1e-3)
    assert s.mean_busy_cores == pytest.approx(syn.SAMPLE_MEAN_BUSY_CORES, abs=1e-2)
    assert s.peak_busy_cores == pytest.approx(syn.SAMPLE_PEAK_BUSY_CORES, abs=1e-2)
    assert s.active_per_epoch == pytest.approx(syn.SAMPLE_ACTIVE_PER_EPOCH, abs=0.01)
    assert s.minute_total_cv == pytest.approx(syn.SAMPLE_MINUTE_TOTAL_CV, abs=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_looks_like_the_sample(seed: int) -> None:
    w = synthetic_workload(seed=seed)
    s = workload_statistics(w)
    assert (w.n_functions, w.n_minutes, w.start_minute) == (500, 480, 480)
    # ~3.04 M invocations; the giant head function's noise is ±1-2 %
    assert s.total_invocations == pytest.approx(3_037_902, rel=0.03)
    # docs/architecture.md "Models": ≈ 53 busy cores at R = 1 (calibrated in expectation to within 1 %, then Poisson noise)
    assert s.mean_busy_cores == pytest.approx(53.2, rel=0.03)
    # active per epoch: sample 268..344 (mean 296); the synthetic one, without the sample's on/off
    # clumping of sparse functions, runs ~9 % higher but stays inside the sample's range
    lo, mean, hi = s.active_per_epoch
    assert 268 <= lo <= hi <= 344
    assert mean == pytest.approx(296.2, rel=0.12)
    p10, p50, p90, p99 = s.t_ave_ms_p10_p50_p90_p99
    assert p10 == pytest.approx(21, rel=0.1)
    assert p50 == pytest.approx(561, rel=0.1)
    assert p90 == pytest.approx(12_035, rel=0.1)
    assert p99 == pytest.approx(115_150, rel=0.15)
    assert s.trigger_counts == dict(syn.TRIGGER_COUNTS)
    assert s.rank_corr_total_t_ave == pytest.approx(syn.RANK_CORR_TOTAL_T_AVE, abs=0.1)
    assert s.burst_cv == pytest.approx(syn.BURST_CV, abs=0.05)
    mem_p50 = float(np.median(w.memory_mb))
    assert mem_p50 == pytest.approx(57.5, rel=0.1)


def test_seeded_and_deterministic() -> None:
    a, b, c = synthetic_workload(seed=7), synthetic_workload(seed=7), synthetic_workload(seed=8)
    assert np.array_equal(a.counts, b.counts)
    assert np.array_equal(a.t_ave_s, b.t_ave_s)
    assert a.triggers == b.triggers
    assert not np.array_equal(a.counts, c.counts)


@pytest.mark.parametrize("n", [2000, 5000])
def test_function_count_keeps_the_per_function_statistics(n: int) -> None:
    """n functions drawn from the same population as the default 500: the distributions of
    per-function rates, durations, memory, triggers and burstiness stay the sample's, so totals,
    busy cores, active functions and the head's share grow in proportion to n."""
    ref = synthetic_workload(seed=0)
    w = synthetic_workload(SyntheticParams(n_functions=n), seed=0)
    s_ref, s = workload_statistics(ref), workload_statistics(w)
    assert w.counts.shape == (n, syn.SAMPLE_N_MINUTES)
    scale = n / syn.SAMPLE_N_FUNCTIONS
    assert SyntheticParams(n_functions=n).expected_invocations() == pytest.approx(syn.SAMPLE_TOTAL_INVOCATIONS * scale)
    # per-function rate distribution: quantiles of log10(total per function), head included
    probs = [0.1, 0.25, 0.5, 0.75, 0.9, 0.99]
    got = np.quantile(np.log10(np.maximum(w.totals(), 1)), probs)
    want = np.quantile(np.log10(np.maximum(ref.totals(), 1)), probs)
    np.testing.assert_allclose(got, want, atol=0.08)
    # the head: one function in 100 carries the sample's head totals, so the top 1 % carry the same share
    top = np.sort(w.totals())[::-1][: n // 100].sum() / w.total_invocations
    top_ref = np.sort(ref.totals())[::-1][:5].sum() / ref.total_invocations
    assert top == pytest.approx(top_ref, abs=0.02)
    assert s.total_invocations / n == pytest.approx(s_ref.total_invocations / 500, rel=0.03)
    assert s.mean_busy_cores / n == pytest.approx(s_ref.mean_busy_cores / 500, rel=0.03)
    np.testing.assert_allclose(s.log10_t_ave_ms_quantiles[1:-1], syn.LOG10_T_AVE_MS_QUANTILES[1:-1], atol=0.03)
    np.testing.assert_allclose(s.log10_memory_mb_quantiles[1:-1], syn.LOG10_MEMORY_MB_QUANTILES[1:-1], atol=0.03)
    shares = {k: v / n for k, v in s.trigger_counts.items()}
    for trigger, count in syn.TRIGGER_COUNTS.items():
        assert shares[trigger] == pytest.approx(count / syn.SAMPLE_N_FUNCTIONS, abs=1.0 / n)
    assert s.rank_corr_total_t_ave == pytest.approx(syn.RANK_CORR_TOTAL_T_AVE, abs=0.05)
    assert s.burst_cv == pytest.approx(syn.BURST_CV, abs=0.02)
    assert s.active_per_epoch[1] / n == pytest.approx(s_ref.active_per_epoch[1] / 500, rel=0.03)
    assert s.minute_total_cv <= s_ref.minute_total_cv  # more independent functions: a smoother total


def test_the_default_count_is_the_sample_size() -> None:
    p = SyntheticParams()
    assert (p.n_functions, p.n_head) == (500, 5)
    assert p.expected_invocations() == syn.SAMPLE_TOTAL_INVOCATIONS
    assert p.expected_busy_cores() == syn.SAMPLE_MEAN_BUSY_CORES


def test_other_sizes() -> None:
    w = synthetic_workload(SyntheticParams(n_functions=40, n_minutes=60, start_minute=0,
                                           total_invocations=10_000, calibrate_busy=False), seed=1)
    assert w.counts.shape == (40, 60)
    assert w.total_invocations == pytest.approx(10_000, rel=0.3)
    with pytest.raises(ValueError, match="n_minutes"):
        SyntheticParams(n_minutes=2000)
