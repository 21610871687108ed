"""The provider interface every signal source implements, the file-backed provider, and the registry.

A provider answers ``hours`` UTC hours from the hour containing ``start`` with an
:class:`~casa_sched.signals.series.HourlySeries`. Carbon providers answer
``ci_g_per_kwh(start, hours)``, price providers ``price_usd_per_kwh(start, hours)``; both also
answer the unit-agnostic ``series(start, hours)``.

Registry: providers are found by the names ``SignalSettings.carbon_source`` / ``price_source``
use. The pure names (``profile``, ``csv``) are registered here; the live HTTP providers
(``electricitymaps``, ``watttime``, ``ukci``) register themselves when
:mod:`casa_sched.signals.live` is imported, which only the outer layers may do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from casa_sched.registry import Registry
from casa_sched.signals.files import load_carbon_csv, load_price_csv
from casa_sched.signals.profile import summer_price, tampa_summer_carbon
from casa_sched.signals.series import CI_UNIT, PRICE_UNIT, HourlySeries, SignalError, checked_unit

if TYPE_CHECKING:  # settings sit beside signals in the bottom layer; only the type is needed
    from casa_sched.settings import SignalSettings


@runtime_checkable
class SignalProvider(Protocol):
    """Hourly values (carbon g/kWh or price $/kWh) for ``hours`` hours from ``start``."""

    def series(self, start: datetime, hours: int) -> HourlySeries: ...


@runtime_checkable
class CarbonProvider(Protocol):
    """Carbon intensity CI_h in g/kWh for ``hours`` UTC hours from the hour containing ``start``."""

    def ci_g_per_kwh(self, start: datetime, hours: int) -> HourlySeries: ...


@runtime_checkable
class PriceProvider(Protocol):
    """Electricity price EP_h in $/kWh for ``hours`` UTC hours from the hour containing ``start``."""

    def price_usd_per_kwh(self, start: datetime, hours: int) -> HourlySeries: ...


@dataclass(frozen=True)
class FileProvider:
    """A loaded series (CSV file) answering windows inside the period it covers."""

    loaded: HourlySeries
    name: str = "csv"

    def series(self, start: datetime, hours: int) -> HourlySeries:
        return self.loaded.sub(start, hours)

    def ci_g_per_kwh(self, start: datetime, hours: int) -> HourlySeries:
        return checked_unit(self.series(start, hours), CI_UNIT)

    def price_usd_per_kwh(self, start: datetime, hours: int) -> HourlySeries:
        return checked_unit(self.series(start, hours), PRICE_UNIT)


OnFallback = Callable[[str], None]
"""Called with a reason (the error's class name) each time a live provider falls back."""

CarbonFactory = Callable[["SignalSettings", OnFallback], CarbonProvider]
PriceFactory = Callable[["SignalSettings"], PriceProvider]

CARBON_PROVIDERS: Registry[CarbonFactory] = Registry("carbon_source", SignalError)
PRICE_PROVIDERS: Registry[PriceFactory] = Registry("price_source", SignalError)
LIVE_CARBON_SOURCES = ("electricitymaps", "watttime", "ukci")


def register_carbon_provider(name: str, factory: CarbonFactory) -> None:
    """Make ``carbon_source=name`` build its provider with ``factory(settings, on_fallback)``
    (a name already taken is refused)."""
    CARBON_PROVIDERS.add(name, factory)


def register_price_provider(name: str, factory: PriceFactory) -> None:
    """Make ``price_source=name`` build its provider with ``factory(settings)`` (a name already
    taken is refused)."""
    PRICE_PROVIDERS.add(name, factory)


def carbon_provider_names() -> tuple[str, ...]:
    return CARBON_PROVIDERS.names()


def price_provider_names() -> tuple[str, ...]:
    return PRICE_PROVIDERS.names()


def _ignore(reason: str) -> None:
    del reason


def carbon_provider(settings: SignalSettings, on_fallback: OnFallback = _ignore) -> CarbonProvider:
    """The carbon provider ``settings.carbon_source`` names.

    ``on_fallback`` is handed to live providers (see :class:`casa_sched.signals.live.FallbackProvider`).
    """
    name = settings.carbon_source
    if name in LIVE_CARBON_SOURCES and name not in CARBON_PROVIDERS:
        raise SignalError(
            f"carbon_source {name!r} is a live HTTP provider: import casa_sched.signals.live "
            "(outer layers only) before asking for it"
        )
    return CARBON_PROVIDERS.get(name)(settings, on_fallback)


def price_provider(settings: SignalSettings) -> PriceProvider:
    """The price provider ``settings.price_source`` names."""
    return PRICE_PROVIDERS.get(settings.price_source)(settings)


def _carbon_profile(settings: SignalSettings, on_fallback: OnFallback) -> CarbonProvider:
    return tampa_summer_carbon(settings.timezone)


def _carbon_csv(settings: SignalSettings, on_fallback: OnFallback) -> CarbonProvider:
    if settings.carbon_csv is None:
        raise SignalError("signals.carbon_source is 'csv' but signals.carbon_csv is not set")
    return FileProvider(load_carbon_csv(settings.carbon_csv))


def _price_profile(settings: SignalSettings) -> PriceProvider:
    return summer_price(settings.timezone)


def _price_csv(settings: SignalSettings) -> PriceProvider:
    if settings.price_csv is None:
        raise SignalError("signals.price_source is 'csv' but signals.price_csv is not set")
    return FileProvider(load_price_csv(settings.price_csv))


register_carbon_provider("profile", _carbon_profile)
register_carbon_provider("csv", _carbon_csv)
register_price_provider("profile", _price_profile)
register_price_provider("csv", _price_csv)
