"""Provider protocols and the registry by name (the pure providers; live ones in test_live.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from casa_sched.settings import SignalSettings
from casa_sched.signals import (
    CarbonProvider,
    DailyProfile,
    FileProvider,
    PriceProvider,
    SignalError,
    carbon_provider,
    carbon_provider_names,
    price_provider,
    price_provider_names,
    providers,
    register_carbon_provider,
    summer_price,
    tampa_summer_carbon,
)

T0 = datetime(2024, 7, 1, tzinfo=UTC)


def test_pure_sources_are_registered():
    assert {"profile", "csv"} <= set(carbon_provider_names())
    assert set(price_provider_names()) == {"profile", "csv"}


def test_defaults_are_the_embedded_profiles_in_the_site_zone():
    ci = carbon_provider(SignalSettings())
    price = price_provider(SignalSettings())
    assert isinstance(ci, CarbonProvider)
    assert isinstance(price, PriceProvider)
    assert isinstance(ci, DailyProfile)
    assert ci.tz == "America/New_York"
    # 2024-07-01 00:00 UTC is 20:00 in Tampa (EDT)
    assert ci.ci_g_per_kwh(T0, 1).values[0] == tampa_summer_carbon().values[20]
    assert price.price_usd_per_kwh(T0, 1).values[0] == summer_price().values[20]


def test_csv_sources(tmp_path: Path):
    ci_path = tmp_path / "ci.csv"
    ci_path.write_text("Datetime (UTC),Carbon intensity gCO₂eq/kWh (direct)\n2024-07-01 00:00,300\n", encoding="utf-8")
    price_path = tmp_path / "p.csv"
    price_path.write_text("Datetime (UTC),Price (USD/MWh)\n2024-07-01 00:00:00+00:00,40\n", encoding="utf-8")
    settings = SignalSettings(carbon_source="csv", carbon_csv=ci_path, price_source="csv", price_csv=price_path)
    ci = carbon_provider(settings)
    assert isinstance(ci, FileProvider)
    assert ci.ci_g_per_kwh(T0, 1).values[0] == 300
    assert price_provider(settings).price_usd_per_kwh(T0, 1).values[0] == pytest.approx(0.04)  # 40 / 1000
    with pytest.raises(SignalError, match=r"gives g/kWh, not \$/kWh"):
        ci.price_usd_per_kwh(T0, 1)  # a carbon file is not a price provider


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(SignalSettings(carbon_source="csv"), "carbon_csv is not set", id="carbon-csv-unset"),
    ],
)
def test_incomplete_settings_are_refused(settings, message):
    with pytest.raises(SignalError, match=message):
        carbon_provider(settings)


def test_price_csv_unset_is_refused():
    with pytest.raises(SignalError, match="price_csv is not set"):
        price_provider(SignalSettings(price_source="csv"))


def test_live_names_need_the_outer_layer_module(monkeypatch: pytest.MonkeyPatch):
    without_live = providers.CARBON_PROVIDERS.copy()
    if "ukci" in without_live:
        without_live.remove("ukci")
    monkeypatch.setattr(providers, "CARBON_PROVIDERS", without_live)
    with pytest.raises(SignalError, match=r"live HTTP provider: import casa_sched\.signals\.live"):
        carbon_provider(SignalSettings(carbon_source="ukci"))


def test_registering_a_provider(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(providers, "CARBON_PROVIDERS", providers.CARBON_PROVIDERS.copy())
    flat = DailyProfile.of([100.0] * 24, "UTC", "g/kWh", "flat")
    register_carbon_provider("flat", lambda settings, on_fallback: flat)
    assert "flat" in carbon_provider_names()
    settings = SignalSettings().model_copy(update={"carbon_source": "flat"})
    assert carbon_provider(settings).ci_g_per_kwh(T0, 2).values.tolist() == [100.0, 100.0]
    unknown = SignalSettings().model_copy(update={"carbon_source": "nowhere"})
    with pytest.raises(SignalError, match=r"unknown carbon_source 'nowhere'; known: .*flat"):
        carbon_provider(unknown)
    with pytest.raises(SignalError, match="carbon_source 'flat' registered twice"):
        register_carbon_provider("flat", lambda settings, on_fallback: flat)
