"""IT power (eq. 1), cooling (eq. 3) and carbon / cost / water accounting (eqs. 4-5)."""

from __future__ import annotations

import numpy as np
import pytest

from casa_sched.models import CoolingProfile, WaterFactors, account_hours, it_power_w

NO_WATER = WaterFactors(0.0, 0.0, 0.0)


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


def test_it_power_and_the_hourly_cooling_factor():
    # eq. 1: 300 + 200 + 150 + 100 = 750 W
    assert it_power_w(np.array([300.0, 200.0]), storage_power_w=150.0, network_power_w=100.0) == 750.0
    # per second, nodes on the first axis: (300 + 200, 310 + 190) + 250 = (750, 750)
    per_s = it_power_w(np.array([[300.0, 310.0], [200.0, 190.0]]), 150.0, 100.0)
    assert list(per_s) == [750.0, 750.0]
    profile = CoolingProfile.of([0.3] * 12 + [0.5] * 12)
    assert profile.factor(13) == 0.5
    assert profile.factor(25) == 0.3  # wraps modulo 24
    assert list(profile.factors([0, 12, 23])) == [0.3, 0.5, 0.5]
    with pytest.raises(ValueError, match="24 hourly factors"):
        CoolingProfile.of([0.3] * 23)
