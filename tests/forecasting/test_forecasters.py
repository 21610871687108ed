"""Forecasters: what each predicts for the next epoch, minute by minute, from a small history.

Histories are built from epochs of constant per-minute counts so the arithmetic fits in a
comment; epochs are 3 minutes long here (any length works, the runner uses 15).
"""

from __future__ import annotations

import numpy as np
import pytest

from casa_sched.forecasting import History, create, forecast, forecaster_names
from casa_sched.forecasting.base import ForecastError
from casa_sched.settings import ForecastSettings

M = 3  # minutes per epoch


def history(*rows: list[float], start_minute_of_day: int = 0) -> History:
    """One function per row, each row a list of per-epoch per-minute counts (held for M minutes)."""
    counts = np.array([np.repeat(np.asarray(r, dtype=float), M) for r in rows]).reshape(len(rows), -1)
    n = len(rows)
    return History(tuple(f"f{i}" for i in range(n)), counts, start_minute_of_day, np.ones(n), np.full(n, 150.0))


def test_every_forecaster_is_registered_by_name():
    assert forecaster_names() == ("care", "ewma", "last", "regressor", "seasonal")


def test_an_unknown_forecaster_is_refused_naming_the_known_ones():
    with pytest.raises(ForecastError, match=r"unknown forecaster 'psychic'; known: care, ewma, last"):
        create("psychic")


NO_FLOOR = ForecastSettings(unseen_floor_per_min=0.0)


@pytest.mark.parametrize("name", ["last", "ewma", "seasonal", "care", "regressor"])
def test_without_the_floor_an_empty_history_and_a_never_seen_function_forecast_zero(name):
    empty = History(("a",), np.zeros((1, 0)), 0, np.ones(1), np.ones(1))
    assert create(name, NO_FLOOR).predict(empty, M).tolist() == [[0.0] * M]
    # twelve epochs: enough for the regressor to fit; f1 never had a request
    h = history([5.0] * 12, [0.0] * 12)
    assert create(name, NO_FLOOR).predict(h, M)[1].tolist() == [0.0] * M


@pytest.mark.parametrize("name", ["last", "ewma", "seasonal", "care", "regressor"])
def test_a_function_unobserved_during_the_warm_up_gets_the_floor_then_zero(name):
    settings = ForecastSettings(unseen_floor_per_min=2.0, unseen_warmup_epochs=4)
    empty = History(("a", "b"), np.zeros((2, 0)), 0, np.ones(2), np.ones(2))
    assert create(name, settings).predict(empty, M).tolist() == [[2.0] * M] * 2  # nothing observed yet
    # three epochs (< 4): f1 is still unobserved; f0's own forecast is untouched
    short = history([5.0] * 3, [0.0] * 3)
    got = create(name, settings).predict(short, M)
    assert got[0].tolist() == create(name, NO_FLOOR).predict(short, M)[0].tolist()
    assert got[1].tolist() == [2.0] * M
    # a function seen once is observed: its own forecast (here 0 after a silent epoch for last)
    seen = history([5.0] * 3, [1.0, 0.0, 0.0])
    assert create(name, settings).predict(seen, M)[1].tolist() == create(name, NO_FLOOR).predict(seen, M)[1].tolist()
    # four epochs: the warm-up is over and a function without a request is idle
    assert create(name, settings).predict(history([5.0] * 4, [0.0] * 4), M)[1].tolist() == [0.0] * M


def test_the_floor_keeps_the_forecasters_name_and_refuses_bad_settings():
    assert create("ewma").name == "ewma"
    from casa_sched.forecasting.unseen import UnseenFloor

    with pytest.raises(ForecastError, match="unseen_floor_per_min must be >= 0"):
        UnseenFloor(create("last"), floor_per_min=-1.0)


def test_last_value_repeats_the_previous_epoch_minute_by_minute():
    h = History(("a",), np.array([[9.0, 9.0, 9.0, 1.0, 0.0, 7.0]]), 0, np.ones(1), np.ones(1))
    assert create("last").predict(h, M).tolist() == [[1.0, 0.0, 7.0]]


@pytest.mark.parametrize(
    ("alpha", "expected"),
    [
        # epochs 2, 4 (newest): weights alpha(1-alpha)^k = 0.25, 0.5 → (0.25·2 + 0.5·4) / 0.75 = 3.333
        pytest.param(0.5, 10.0 / 3.0, id="alpha-0.5"),
        # alpha = 1: the newest epoch only
        pytest.param(1.0, 4.0, id="alpha-1-is-last-value"),
    ],
)
def test_ewma_weights_epochs_exponentially(alpha, expected):
    h = history([2.0, 4.0])
    assert create("ewma", ForecastSettings(ewma_alpha=alpha)).predict(h, M) == pytest.approx(np.full((1, M), expected))


def test_seasonal_naive_repeats_yesterday_once_the_history_holds_a_day():
    day = 1440
    counts = np.zeros((1, day + M))
    counts[0, :M] = [3.0, 1.0, 2.0]  # the same minutes yesterday
    counts[0, -M:] = 50.0  # the last epoch, which last value would repeat
    h = History(("a",), counts, 0, np.ones(1), np.ones(1))
    # history = 1 day + 3 min: the next epoch starts 1 day after minute 3, so yesterday is minutes 3..5
    assert create("seasonal").predict(h, M).tolist() == [[0.0, 0.0, 0.0]]
    h2 = History(("a",), counts[:, M:], 0, np.ones(1), np.ones(1))  # exactly one day: minutes 0..2 of it
    assert create("seasonal").predict(h2, M).tolist() == [counts[0, M : 2 * M].tolist()]
    week = 7 * day
    counts_w = np.zeros((1, week))
    counts_w[0, :M] = 8.0
    hw = History(("a",), counts_w, 0, np.ones(1), np.ones(1))
    assert create("seasonal").predict(hw, M).tolist() == [[8.0] * M]  # a week back wins over a day


def test_seasonal_falls_back_to_its_stated_forecaster_under_a_day():
    h = history([2.0, 4.0])
    assert create("seasonal").predict(h, M).tolist() == [[4.0] * M]  # fallback last: the previous epoch
    ewma = create("seasonal", ForecastSettings(seasonal_fallback="ewma"))
    assert ewma.predict(h, M) == pytest.approx(np.full((1, M), 10.0 / 3.0))


@pytest.mark.parametrize(
    ("epochs", "expected"),
    [
        # steady: persistent (= last value under a day of history) has no error → 10
        pytest.param([10, 10, 10, 10], 10.0, id="steady-keeps-persistent"),
        # alternating: last value missed the last two epochs (0 vs 10, 10 vs 0: sMAPE 2 each > 0.5),
        # so the EWMA (alpha 0.5) takes over: (0.5·10 + 0.25·0 + 0.125·10 + 0.0625·0) / 0.9375 = 6.667
        pytest.param([0, 10, 0, 10], 6.25 / 0.9375, id="anomalous-uses-ewma"),
        # the burst is over: the last two epochs' persistent forecasts were right again → back to 10
        pytest.param([0, 10, 0, 10, 10, 10], 10.0, id="recovered-switches-back"),
    ],
)
def test_care_switches_to_the_second_model_while_the_persistent_error_is_high(epochs, expected):
    h = history([float(x) for x in epochs])
    assert create("care").predict(h, M) == pytest.approx(np.full((1, M), expected))


def test_care_refuses_itself_as_fallback():
    with pytest.raises(ForecastError, match="care_fallback"):
        create("care", ForecastSettings(care_fallback="care"))


def test_regressor_falls_back_to_last_value_until_it_has_lags_plus_two_epochs():
    short = history([1.0, 2.0, 3.0, 4.0, 5.0])  # 5 epochs < 4 lags + 2
    assert create("regressor").predict(short, M).tolist() == [[5.0] * M]


@pytest.mark.parametrize("model", ["gradient_boosting", "ridge"])
def test_regressor_learns_steady_loads_and_keeps_the_last_epochs_shape(model):
    rng = np.random.default_rng(0)
    lam = np.geomspace(2.0, 100.0, 40)  # 40 functions, steady Poisson loads of 2..100 requests per minute
    counts = np.repeat(rng.poisson(lam[:, None] * M, (40, 16)) / M, M, axis=1)
    counts[:, -M:] = np.array([1.0, 2.0, 3.0]) * counts[:, -M:].mean(axis=1, keepdims=True) / 2.0
    h = History(tuple(f"f{i}" for i in range(40)), counts, 480, np.ones(40), np.ones(40))
    out = create("regressor", ForecastSettings(regressor_model=model)).predict(h, M)
    totals = out.sum(axis=1)
    # the next epoch's total is about 3·λ: within 25 % for most functions
    assert np.median(np.abs(totals / (M * lam) - 1.0)) < 0.25
    # and it is spread in the last epoch's 1:2:3 shape
    np.testing.assert_allclose(out / totals[:, None], np.tile([1 / 6, 2 / 6, 3 / 6], (40, 1)))


def test_forecast_wraps_the_prediction_for_the_planner():
    h = history([2.0, 4.0], [1.0, 0.0])
    fc = forecast(create("last"), h, epoch=2, start_s=360.0, minutes=M)
    assert fc.function_ids == ("f0", "f1")
    assert fc.totals.tolist() == [12.0, 0.0]  # 4 per minute x 3 minutes; f1 was idle last epoch
    assert (fc.epoch, fc.start_s, fc.minutes) == (2, 360.0, M)


def test_a_history_with_negative_or_missing_counts_is_refused():
    with pytest.raises(ForecastError, match="finite and >= 0"):
        History(("a",), np.array([[1.0, np.nan]]), 0, np.ones(1), np.ones(1))
