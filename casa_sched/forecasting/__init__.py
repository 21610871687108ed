"""Next-epoch load per function from its per-minute history: one forecaster per module, by name.

``last`` (the previous epoch), ``ewma`` (exponentially weighted epochs), ``seasonal`` (same
epoch a week / a day ago), ``care`` (CaRE's persistent forecast with an anomaly fallback) and
``regressor`` (scikit-learn on lags and time of day). Pure: no clock, no I/O, no Prometheus;
the runner feeds them a trace's history, the autoscaler a Prometheus history
(``casa_sched.metricsources``). ``casa forecast backtest`` measures them on a real trace.
"""

from casa_sched.forecasting._forecasters import FORECASTERS, create, forecaster_names, register
from casa_sched.forecasting.base import MINUTES_PER_DAY, Forecaster, ForecastError, History, forecast, repeat_last

__all__ = [
    "FORECASTERS",
    "MINUTES_PER_DAY",
    "ForecastError",
    "Forecaster",
    "History",
    "create",
    "forecast",
    "forecaster_names",
    "register",
    "repeat_last",
]
