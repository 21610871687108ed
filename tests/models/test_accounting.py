"""Cooling (eq. 3), energy integration and carbon / cost / water accounting (eqs. 4-5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from casa_sched.models import (
    CoolingProfile,
    WaterFactors,
    account_hours,
    cooling_power_w,
    energy_by_hour_j,
    it_power_w,
)

NO_WATER = WaterFactors(0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("times_s", "power_w", "hours", "expected_j"),
    [
        # 100 W for the first half hour, 200 W until 1.5 h, 50 W after:
        # h0 = 1800·100 + 1800·200 = 540,000 J; h1 = 1800·200 + 1800·50 = 450,000 J
        pytest.param([0, 1800, 5400], [100, 200, 50], 2, [540_000, 450_000], id="steps"),
        # a segment that starts before the window counts only inside it: 3600·100 per hour
        pytest.param([-500, 7200], [100, 1], 2, [360_000, 360_000], id="before-window"),
        # nothing before the first sample: 0 W until 3600 s, then 10 W
        pytest.param([3600], [10], 2, [0, 36_000], id="late-start"),
        pytest.param([], [], 3, [0, 0, 0], id="empty"),
    ],
)
def test_energy_by_hour_integrates_piecewise_constant_power(times_s, power_w, hours, expected_j):
    assert energy_by_hour_j(times_s, power_w, 0.0, hours) == pytest.approx(expected_j)


@given(
    st.lists(st.tuples(st.floats(0, 7200), st.floats(0, 1000)), min_size=1, max_size=30),
)
def test_energy_is_conserved(samples):
    samples.sort()
    t = [s[0] for s in samples]
    p = [s[1] for s in samples]
    by_hour = energy_by_hour_j(t, p, 0.0, 2)
    # Direct integral of the same step function over [0, 7200).
    ends = [*t[1:], 7200.0]
    total = sum(pi * (e - s) for s, e, pi in zip(t, ends, p, strict=True))
    assert by_hour.sum() == pytest.approx(total, rel=1e-9, abs=1e-6)


def test_account_hours_follows_equations_3_to_5():
    # Two hours at 1 kWh of IT energy each (3.6e6 J); E_t = 0.5 then 0.25.
    # Total energy: 1.5 + 1.25 = 2.75 kWh. Carbon: 400·1.5 + 200·1.25 = 850 g.
    # Energy cost: 0.10·1.5 + 0.20·1.25 = 0.40 $. Cooling energy 0.75 kWh → water 2·0.75 = 1.5 L,
    # its carbon 1.5·0.5 = 0.75 g and cost 1.5·0.01 = 0.015 $.
    result = account_hours([3.6e6, 3.6e6], [0.5, 0.25], [400.0, 200.0], [0.10, 0.20], WaterFactors(2.0, 0.5, 0.01))
    assert result.energy_kwh == pytest.approx(2.75)
    assert result.carbon_g == pytest.approx(850.0)
    assert result.energy_cost_usd == pytest.approx(0.40)
    assert result.water_l == pytest.approx(1.5)
    assert result.water_carbon_g == pytest.approx(0.75)
    assert result.cost_usd == pytest.approx(0.415)


def test_accounting_refuses_missing_hours():
    with pytest.raises(ValueError, match="CI_h has missing"):
        account_hours([1.0], [0.3], [np.nan], [0.1], NO_WATER)
    with pytest.raises(ValueError, match="differ in shape"):
        account_hours([1.0, 2.0], [0.3], [1.0], [0.1], NO_WATER)


def test_cooling_and_it_power():
    # eq. 1: 300 + 200 + 150 + 100 = 750 W; eq. 3: 0.4·750 = 300 W
    p_it = it_power_w([300.0, 200.0], storage_power_w=150.0, network_power_w=100.0)
    assert p_it == 750.0
    assert cooling_power_w(p_it, 0.4) == pytest.approx(300.0)
    profile = CoolingProfile.of([0.3] * 12 + [0.5] * 12)
    assert profile.factor(13) == 0.5
    assert profile.factor(25) == 0.3  # wraps modulo 24
    assert list(profile.factors([0, 12, 23])) == [0.3, 0.5, 0.5]
    with pytest.raises(ValueError, match="24 hourly factors"):
        CoolingProfile.of([0.3] * 23)
