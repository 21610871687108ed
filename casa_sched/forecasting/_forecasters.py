"""Every forecaster, registered by name (one explicit list, so the import arrows show what exists).

Add a forecaster by writing its module and one line here; each factory takes the ``forecast``
settings section. Out-of-tree forecasters can be added with :func:`register`. :func:`create`
wraps every forecaster in the rule for unobserved functions (``unseen``); forecasters built from
other forecasters (``seasonal``, ``care``) compose the bare ones, so the rule applies once.
"""

from __future__ import annotations

from collections.abc import Callable

from casa_sched.forecasting.base import Forecaster, ForecastError
from casa_sched.forecasting.care import PersistentWithAnomalyFallback
from casa_sched.forecasting.ewma import Ewma
from casa_sched.forecasting.last import LastValue
from casa_sched.forecasting.regressor import LagRegressor
from casa_sched.forecasting.seasonal import SeasonalNaive
from casa_sched.forecasting.unseen import UnseenFloor
from casa_sched.registry import Registry
from casa_sched.settings import ForecastSettings

ForecasterFactory = Callable[[ForecastSettings], Forecaster]
FORECASTERS: Registry[ForecasterFactory] = Registry("forecaster", ForecastError)


def _seasonal(settings: ForecastSettings) -> Forecaster:
    if settings.seasonal_fallback in ("seasonal", "care"):
        raise ForecastError("forecast.seasonal_fallback must name a forecaster that is not seasonal itself")
    return SeasonalNaive(fallback=_bare(settings.seasonal_fallback, settings))


def _care(settings: ForecastSettings) -> Forecaster:
    if settings.care_fallback == "care":
        raise ForecastError("forecast.care_fallback must name another forecaster than 'care'")
    return PersistentWithAnomalyFallback(
        persistent=_bare("seasonal", settings),
        fallback=_bare(settings.care_fallback, settings),
        threshold=settings.care_threshold,
        window_epochs=settings.care_window_epochs,
    )


def _regressor(s: ForecastSettings) -> Forecaster:
    return LagRegressor(
        lags=s.regressor_lags, max_train_epochs=s.regressor_max_train_epochs, seed=s.regressor_seed,
        model=s.regressor_model,
    )  # fmt: skip


FORECASTERS.add("last", lambda settings: LastValue())
FORECASTERS.add("ewma", lambda settings: Ewma(alpha=settings.ewma_alpha))
FORECASTERS.add("seasonal", _seasonal)
FORECASTERS.add("care", _care)
FORECASTERS.add("regressor", _regressor)


def register(name: str, factory: ForecasterFactory) -> ForecasterFactory:
    """Make an out-of-tree forecaster available as ``name`` (a name already taken is refused)."""
    return FORECASTERS.add(name, factory)


def _bare(name: str, settings: ForecastSettings) -> Forecaster:
    """The registered forecaster itself, without the rule for unobserved functions."""
    return FORECASTERS.get(name)(settings)


def create(name: str, settings: ForecastSettings | None = None) -> Forecaster:
    """A forecaster by registry name, configured by the ``forecast`` settings section, with the
    rule for functions the history has not observed (:mod:`casa_sched.forecasting.unseen`)."""
    s = settings if settings is not None else ForecastSettings()
    return UnseenFloor(_bare(name, s), floor_per_min=s.unseen_floor_per_min, warmup_epochs=s.unseen_warmup_epochs)


def forecaster_names() -> tuple[str, ...]:
    """Every registered forecaster, sorted."""
    return FORECASTERS.names()
