"""Deadlines and violation rates (eqs. 6-7), cold start (eq. 8) and finish time (eq. 9)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from casa_sched.models import (
    cold_start_s,
    deadline_s,
    finish_time_s,
    request_violation_rate,
    sl_ave,
    t_cold_s,
    t_deadline_s,
    violation_rate,
    wait_budget_s,
)


@pytest.mark.parametrize(
    ("arrival", "laxity", "t_ave", "expected"),
    [
        pytest.param(0.0, 10, 0.5, 5.0, id="laxity10"),  # 0 + 10·0.5
        pytest.param(100.0, 20, 2.0, 140.0, id="laxity20"),  # 100 + 20·2
    ],
)
def test_deadline(arrival, laxity, t_ave, expected):
    assert deadline_s(arrival, laxity, t_ave) == pytest.approx(expected)
    assert t_deadline_s(arrival, laxity, t_ave) == deadline_s(arrival, laxity, t_ave)
    # what is left to wait: deadline − arrival − T_ave = (laxity − 1)·T_ave
    assert wait_budget_s(laxity, t_ave) == pytest.approx(expected - arrival - t_ave)


def test_violation_rates_average_over_active_functions_only():
    # f1: 1/4, f2: 0/10, f3 inactive → SL_ave = (0.25 + 0) / 2 = 0.125 (unweighted)
    assert sl_ave([1, 0, 0], [4, 10, 0]) == pytest.approx(0.125)
    assert math.isnan(violation_rate(0, 0))
    assert sl_ave([], []) == 0.0
    with pytest.raises(ValueError, match="violations <= requests"):
        violation_rate(5, 4)


def test_request_weighted_rate_pools_the_requests_where_sl_ave_averages_the_functions():
    # the busy function misses 600 of 1000, nine quiet ones none of their 10 each:
    # SL_ave = 0.6 / 10 = 6 %, the request-weighted rate 600 / 1090 = 55 %
    v, n = [600] + [0] * 9, [1000] + [10] * 9
    assert sl_ave(v, n) == pytest.approx(0.06)
    assert request_violation_rate(v, n) == pytest.approx(600 / 1090)
    assert request_violation_rate(7, 20) == pytest.approx(0.35)  # run totals, as scalars
    assert request_violation_rate([0, 0], [0, 0]) == 0.0
    with pytest.raises(ValueError, match="violations <= requests"):
        request_violation_rate([5], [4])
    with pytest.raises(ValueError, match="differ in shape"):
        request_violation_rate([1, 2], [3])


@given(st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), max_size=20))
def test_sl_ave_is_a_ratio(pairs):
    v = [min(a, b) for a, b in pairs]
    n = [max(a, b) for a, b in pairs]
    assert 0.0 <= sl_ave(v, n) <= 1.0
    assert 0.0 <= request_violation_rate(v, n) <= 1.0
    # both are the same when every active function has as many requests
    if len({b for b in n if b}) == 1:
        assert request_violation_rate(v, n) == pytest.approx(sl_ave(v, n))


@pytest.mark.parametrize(
    ("image_mb", "bw", "hops", "delay", "expected"),
    [
        # one 300 MB image over 125 MB/s and 4 hops of 1 ms: 2.4 + 0.004
        pytest.param(300, 125, 4, 0.001, 2.404, id="single"),
        # three images start together on the node: 900 / 125 + 2·0.001 = 7.202
        pytest.param(900, 125, 2, 0.001, 7.202, id="shared-link"),
    ],
)
def test_cold_start(image_mb, bw, hops, delay, expected):
    assert cold_start_s(image_mb, bw, hops, delay) == pytest.approx(expected)
    assert t_cold_s(float(image_mb), bw, float(hops), delay) == cold_start_s(image_mb, bw, hops, delay)


def test_unchecked_equations_hold_element_wise():
    # per node: images (300, 600, 0) MB at 125 MB/s over (4, 2, 0) hops of 1 ms → 2.404, 4.802, 0
    t = t_cold_s(np.array([300.0, 600.0, 0.0]), 125.0, np.array([4.0, 2.0, 0.0]), 0.001)
    assert t == pytest.approx([2.404, 4.802, 0.0])
    # laxity 10 with T_ave (0.5, 2) s → wait budgets 9·0.5 = 4.5 and 9·2 = 18 s
    assert wait_budget_s(10.0, np.array([0.5, 2.0])) == pytest.approx([4.5, 18.0])


def test_finish_time_and_bad_inputs():
    # eq. 9: 10 + 1 + 2.4 + 0.5 = 13.9
    assert finish_time_s(10.0, 1.0, 2.4, 0.5) == pytest.approx(13.9)
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        cold_start_s(1, 0, 1, 0)
    with pytest.raises(ValueError, match="T_ave must be > 0"):
        deadline_s(0, 10, 0)
