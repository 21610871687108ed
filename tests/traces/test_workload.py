"""Workload behaviour: epochs, R× scaling, subsets, arrivals (tables with the arithmetic shown)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from casa_sched.traces import Workload, WorkloadError


def _w(counts: list[list[int]] | np.ndarray, start: int = 480) -> Workload:
    arr = np.asarray(counts, dtype=np.int64)
    n = arr.shape[0]
    return Workload(
        function_ids=tuple(f"f{i}" for i in range(n)),
        counts=arr,
        start_minute=start,
        t_ave_s=np.full(n, 0.5),
        memory_mb=np.full(n, 128.0),
        triggers=("http",) * n,
    )


# 2 functions × 6 minutes, epochs of 3 minutes
TINY = [[1, 0, 2, 0, 0, 0], [4, 4, 4, 1, 0, 0]]


@pytest.mark.parametrize(
    ("epoch_min", "expected"),
    [
        pytest.param(3, [[3, 0], [12, 1]], id="3min: f0 1+0+2=3, 0; f1 4+4+4=12, 1+0+0=1"),
        pytest.param(4, [[3, 0], [13, 0]], id="4min: f0 1+0+2+0=3, then 0+0; f1 4+4+4+1=13, 0"),
        pytest.param(6, [[3], [13]], id="6min: one epoch"),
    ],
)
def test_epoch_counts(epoch_min: int, expected: list[list[int]]) -> None:
    assert _w(TINY).epoch_counts(epoch_min).tolist() == expected


def test_epoch_rate_uses_true_length_of_partial_epoch() -> None:
    # 4-minute epochs over 6 minutes: the last epoch is 2 minutes = 120 s; f1 has 0 there.
    # epoch 0: f1 13 requests / 240 s
    rate = _w(TINY).epoch_rate_per_s(4)
    assert rate[1, 0] == pytest.approx(13 / 240)
    assert rate[1, 1] == 0.0


def test_active_functions_per_epoch() -> None:
    w = _w(TINY)
    assert w.active_per_epoch(3).tolist() == [2, 1]  # epoch 1: only f1 (1 request at minute 3)
    assert w.active_functions(1, 3).tolist() == [1]


def test_mean_busy_cores_arithmetic() -> None:
    # 3 + 13 = 16 requests × 0.5 s over 6 min = 360 s -> 8 / 360 = 0.0222 cores
    assert _w(TINY).mean_busy_cores() == pytest.approx(16 * 0.5 / 360)


@pytest.mark.parametrize(
    ("factor", "cell", "low", "high"),
    [
        pytest.param(20.0, 3, 60, 60, id="20×3=60 exact"),
        pytest.param(2.5, 4, 10, 10, id="2.5×4=10 exact"),
        pytest.param(2.5, 3, 7, 8, id="2.5×3=7.5 -> 7 or 8"),
        pytest.param(0.1, 1, 0, 1, id="0.1×1 -> 0 or 1"),
        pytest.param(7.0, 0, 0, 0, id="zero stays zero"),
    ],
)
def test_scaling_rule(factor: float, cell: int, low: int, high: int) -> None:
    scaled = _w([[cell] * 1000]).scaled(factor, seed=1).counts
    assert int(scaled.min()) >= low
    assert int(scaled.max()) <= high


def test_scaling_is_unbiased_and_seeded() -> None:
    # 1000 cells of 3 × 2.5 = 7.5 each: expected total 7500; Bernoulli(0.5) sd = sqrt(1000·0.25) ≈ 16
    w = _w([[3] * 1000])
    total = w.scaled(2.5, seed=4).total_invocations
    assert abs(total - 7500) < 5 * 16
    assert np.array_equal(w.scaled(2.5, seed=4).counts, w.scaled(2.5, seed=4).counts)
    with pytest.raises(WorkloadError, match="R must be"):
        w.scaled(-1.0)


def test_subsets() -> None:
    w = _w([[1, 1], [5, 5], [0, 2], [9, 0]])  # totals 2, 10, 2, 9
    assert w.top_k(2).function_ids == ("f1", "f3")
    assert w.top_k(3).function_ids == ("f1", "f3", "f0")  # tie 2 = 2 broken by row
    assert w.subset_ids(["f2", "f0"]).totals().tolist() == [2, 2]
    a = w.random_subset(2, seed=3)
    assert a.function_ids == w.random_subset(2, seed=3).function_ids
    assert len(set(a.function_ids)) == 2
    with pytest.raises(KeyError, match="'nope'"):
        w.subset_ids(["nope"])


def test_window() -> None:
    w = _w(TINY).window(482, 3)  # absolute minutes 482..484 = columns 2..4
    assert (w.start_minute, w.counts.tolist()) == (482, [[2, 0, 0], [4, 1, 0]])


def test_counts_are_read_only_and_validated() -> None:
    w = _w(TINY)
    with pytest.raises(ValueError, match="read-only"):
        w.counts[0, 0] = 5
    with pytest.raises(WorkloadError, match=">= 0"):
        _w([[1, -1]])
    with pytest.raises(WorkloadError, match="unique"):
        Workload(("a", "a"), np.zeros((2, 1), np.int64), 0, np.ones(2), np.ones(2), ("http", "http"))


def test_arrivals_table() -> None:
    # epoch 1 of 3-minute epochs = minutes 3..5 -> [180 s, 360 s); only f1 has 1 request at minute 3
    a = _w(TINY).arrivals(1, seed=0, epoch_min=3)
    assert (a.start_s, a.end_s, len(a)) == (180.0, 360.0, 1)
    assert a.function_index.tolist() == [1]
    assert 180.0 <= a.times_s[0] < 240.0


# ---- properties -------------------------------------------------------------------------------

count_matrices = hnp.arrays(
    np.int64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12), elements=st.integers(0, 30)
)


@settings(max_examples=60, deadline=None)
@given(counts=count_matrices, factor=st.floats(0, 5), seed=st.integers(0, 2**32), epoch_min=st.integers(1, 7))
def test_arrivals_properties(counts: np.ndarray, factor: float, seed: int, epoch_min: int) -> None:
    w = _w(counts).scaled(factor, seed=seed)
    expected = w.epoch_counts(epoch_min)
    for epoch in range(w.n_epochs(epoch_min)):
        a = w.arrivals(epoch, seed=seed, epoch_min=epoch_min)
        assert np.all(np.diff(a.times_s) >= 0)
        assert np.all(a.times_s >= a.start_s)
        assert np.all(a.times_s < a.end_s)
        assert np.bincount(a.function_index, minlength=w.n_functions).tolist() == expected[:, epoch].tolist()
        # each request lies in a minute where its function had a request, as many as the count
        minute = (a.times_s // 60).astype(np.int64)
        got = np.zeros_like(w.counts)
        np.add.at(got, (a.function_index, minute), 1)
        m0 = epoch * epoch_min
        assert np.array_equal(got[:, m0 : m0 + epoch_min], w.counts[:, m0 : m0 + epoch_min])
        again = w.arrivals(epoch, seed=seed, epoch_min=epoch_min)
        assert np.array_equal(a.times_s, again.times_s)
        assert np.array_equal(a.function_index, again.function_index)
        per_fn = w.arrivals_by_function(epoch, seed=seed, epoch_min=epoch_min)
        assert [x.size for x in per_fn] == expected[:, epoch].tolist()
        for x in per_fn:
            assert np.all(np.diff(x) >= 0)
            assert np.all((x >= a.start_s) & (x < a.end_s))


@settings(max_examples=40, deadline=None)
@given(counts=count_matrices, seed=st.integers(0, 2**32), block=st.integers(1, 200))
def test_arrivals_by_function_do_not_depend_on_the_block_size(counts: np.ndarray, seed: int, block: int) -> None:
    """Large epochs are drawn in blocks of functions (bounded memory); the times are the same."""
    from casa_sched.traces import workload as module

    w = _w(counts)
    whole = w.arrivals_by_function(0, seed=seed, epoch_min=w.n_minutes)
    saved = module.BLOCK_REQUESTS
    module.BLOCK_REQUESTS = block
    try:
        blocks = w.arrivals_by_function(0, seed=seed, epoch_min=w.n_minutes)
    finally:
        module.BLOCK_REQUESTS = saved
    assert len(blocks) == len(whole)
    for a, b in zip(whole, blocks, strict=True):
        assert np.array_equal(a, b)


@settings(max_examples=40, deadline=None)
@given(counts=count_matrices, factor=st.floats(0, 50), seed=st.integers(0, 2**32))
def test_scaling_properties(counts: np.ndarray, factor: float, seed: int) -> None:
    w = _w(counts)
    s = w.scaled(factor, seed=seed)
    exact = counts * factor
    assert np.all(s.counts >= np.floor(exact))
    assert np.all(s.counts <= np.ceil(exact))
    assert np.array_equal(s.counts, w.scaled(factor, seed=seed).counts)
