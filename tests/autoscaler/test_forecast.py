"""Forecast: last-value forecaster over a metrics source; functions without data are held."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from casa_sched.autoscaler.forecast import (
    FileMetricsSource,
    FunctionInfo,
    HistoryForecaster,
    MetricsError,
    NoMetrics,
)

START = datetime(2026, 7, 10, 12, 0, tzinfo=UTC)


def _source(tmp_path, doc) -> FileMetricsSource:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(doc))
    return FileMetricsSource(path)


def test_last_value_repeats_the_last_epoch_and_holds_functions_without_data(tmp_path) -> None:
    src = _source(tmp_path, {"functions": {
        "a": {"requests_per_minute": 120, "t_ave_s": 0.5},
        "b": {"requests_per_minute": [1, 2, 3, 4]},  # a series: its last 3 minutes for a 3-minute epoch
    }})
    got = HistoryForecaster(src, default_t_ave_s=1.0).forecast(
        5, START, 180.0, [FunctionInfo("a", 150.0), FunctionInfo("b", 300.0), FunctionInfo("c", 150.0)])
    f = got.forecast
    assert (f.epoch, f.function_ids, f.minutes, got.held) == (5, ("a", "b"), 3, ("c",))
    assert f.counts.tolist() == [[120.0] * 3, [2.0, 3.0, 4.0]]
    assert f.t_ave_s.tolist() == [0.5, 1.0]  # b has no T_ave: the configured default
    assert f.memory_mb.tolist() == [150.0, 300.0]


def test_no_metrics_backend_holds_everything() -> None:
    got = HistoryForecaster(NoMetrics(), 1.0).forecast(1, START, 900.0, [FunctionInfo("a", 150.0)])
    assert got.held == ("a",)
    assert got.forecast.function_ids == ()
    assert got.forecast.counts.shape == (0, 15)


def test_file_is_reread_when_it_changes(tmp_path) -> None:
    src = _source(tmp_path, {"functions": {"a": {"requests_per_minute": 1, "in_flight": 3}},
                             "pods": {"fn/p1": {"cpu_cores": 1.5}}})
    assert src.in_flight(["a", "b"]) == {"a": 3.0}
    assert src.cpu_usage_cores(["fn/p1", "fn/p2"]) == {"fn/p1": 1.5}
    (tmp_path / "metrics.json").write_text(json.dumps({"functions": {"a": {"requests_per_minute": 1, "in_flight": 40}}}))
    assert src.in_flight(["a"]) == {"a": 40.0}
    np.testing.assert_array_equal(src.request_counts(["a"], START, 2)["a"], [1.0, 1.0])


@pytest.mark.parametrize(("doc", "message"), [
    pytest.param([], "top level must be an object", id="not-an-object"),
    pytest.param({"functions": {"a": {}}}, "functions.a: needs requests_per_minute", id="no-rate"),
    pytest.param({"functions": {"a": {"requests_per_minute": -1}}}, "finite number >= 0", id="negative-rate"),
    pytest.param({"functions": {"a": {"requests_per_minute": 1, "t_ave_s": 0}}}, "duration > 0 s", id="zero-t-ave"),
    pytest.param({"pods": {"p": {}}}, "pods.p: needs cpu_cores", id="pod-without-usage"),
])
def test_malformed_metrics_files_name_the_field(tmp_path, doc, message) -> None:
    with pytest.raises(MetricsError, match=message):
        _source(tmp_path, doc)


def test_unreadable_metrics_file(tmp_path) -> None:
    (tmp_path / "m.json").write_text("{")
    with pytest.raises(MetricsError, match=r"m\.json: not JSON"):
        FileMetricsSource(tmp_path / "m.json")
    with pytest.raises(MetricsError, match=r"missing\.json"):
        FileMetricsSource(tmp_path / "missing.json")


class _FreshPrometheus:
    """Series as PrometheusSource returns them after a fresh start: NaN before the first sample."""

    def __init__(self, rows: dict[str, list[float]]) -> None:
        self.rows = rows

    def request_counts(self, functions, end, minutes):
        out = {}
        for f in functions:
            if f in self.rows:
                v = np.asarray(self.rows[f], dtype=np.float64)
                out[f] = np.concatenate([np.full(minutes - v.size, np.nan), v])
        return out

    def mean_duration_s(self, functions, end, minutes):
        return {}

    def in_flight(self, functions):
        return {}

    def cpu_usage_cores(self, pods):
        return {}


def test_after_a_fresh_start_the_history_is_as_long_as_the_metrics_go_back() -> None:
    from casa_sched.forecasting import create
    from casa_sched.settings import ForecastSettings

    settings = ForecastSettings()  # the documented rule: a floor while the history is short
    model = create("last", settings)
    observed = {"busy": [6.0] * 30, "quiet": [0.0] * 30}  # two 15-minute epochs since Prometheus started
    live = HistoryForecaster(_FreshPrometheus(observed), 1.0, model, history_minutes=480)
    f = live.forecast(2, START, 900.0, [FunctionInfo("busy", 150.0), FunctionInfo("quiet", 150.0)]).forecast
    # 30 minutes < unseen_warmup_epochs epochs: "quiet" is unobserved, not idle, and gets the floor
    assert f.counts[1].tolist() == [settings.unseen_floor_per_min] * 15
    assert f.counts[0].tolist() == [6.0] * 15
    # with the window really covered (8 hours of zeros), "quiet" is idle: forecast at zero
    long = {"busy": [6.0] * 480, "quiet": [0.0] * 480}
    f = HistoryForecaster(_FreshPrometheus(long), 1.0, model, history_minutes=480).forecast(
        2, START, 900.0, [FunctionInfo("busy", 150.0), FunctionInfo("quiet", 150.0)]).forecast
    assert f.counts[1].tolist() == [0.0] * 15
