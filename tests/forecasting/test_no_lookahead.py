"""No forecaster sees the epoch it forecasts: changing every minute from the epoch's start on
leaves the forecast the planner gets unchanged (the runner's history ends at the epoch start)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from casa_sched.experiments.inputs import build_scenario
from casa_sched.forecasting import forecaster_names
from casa_sched.settings import load_settings
from casa_sched.traces import synthetic_workload
from casa_sched.traces.synthetic import SyntheticParams

EPOCH_MIN = 15
EPOCHS = 8


@pytest.fixture(scope="module")
def workload():
    return synthetic_workload(SyntheticParams(n_functions=30, n_minutes=EPOCHS * EPOCH_MIN), seed=3)


@pytest.mark.parametrize("name", forecaster_names())
@pytest.mark.parametrize("epoch", [0, 1, 4, 7])  # 7: the regressor fits (lags + 2 = 6 epochs of history)
def test_perturbing_the_future_leaves_the_forecast_unchanged(workload, name, epoch):
    settings = load_settings(None, {}, flag_names={})
    scenario, _ = build_scenario(settings, workload=workload, epochs=EPOCHS, forecast=name)
    before = scenario.forecast_for(epoch).counts
    rng = np.random.default_rng(epoch)
    future = workload.counts.copy()
    cut = epoch * EPOCH_MIN
    future[:, cut:] = rng.integers(0, 1000, size=future[:, cut:].shape)  # a different future, same past
    assert not np.array_equal(future[:, cut:], workload.counts[:, cut:])
    changed = dataclasses.replace(scenario, workload=dataclasses.replace(workload, counts=future))
    np.testing.assert_array_equal(changed.forecast_for(epoch).counts, before)
    # and the past does matter (the test can fail): changing the epoch before moves the forecast
    if epoch >= 1 and workload.counts[:, cut - EPOCH_MIN : cut].any():
        past = workload.counts.copy()
        past[:, cut - EPOCH_MIN : cut] += 50
        moved = dataclasses.replace(scenario, workload=dataclasses.replace(workload, counts=past))
        assert not np.array_equal(moved.forecast_for(epoch).counts, before)
