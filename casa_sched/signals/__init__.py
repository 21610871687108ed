"""Carbon-intensity and price signals behind one interface (CI_h and EP_h of paper eqs. 4-5).

Pure parts live here: the hourly series type, its fill rules, CSV loaders, 24-hour profiles with
the embedded Tampa summer defaults, the provider protocols and the registry by name. The HTTP
providers (Electricity Maps, WattTime, UK Carbon Intensity) are in :mod:`casa_sched.signals.live`,
which only the outer layers may import; importing it registers them in the same registry.
"""

from casa_sched.signals.files import (
    USD_PER_MWH_TO_USD_PER_KWH,
    SignalFileError,
    load_carbon_csv,
    load_price_csv,
)
from casa_sched.signals.profile import (
    SUMMER_PRICE_USD_PER_KWH,
    TAMPA_SUMMER_CI_G_PER_KWH,
    TAMPA_TZ,
    DailyProfile,
    summer_price,
    tampa_summer_carbon,
)
from casa_sched.signals.providers import (
    CarbonProvider,
    FileProvider,
    OnFallback,
    PriceProvider,
    SignalProvider,
    carbon_provider,
    carbon_provider_names,
    price_provider,
    price_provider_names,
    register_carbon_provider,
    register_price_provider,
)
from casa_sched.signals.series import (
    CI_UNIT,
    DEFAULT_FILL_RULE,
    PRICE_UNIT,
    FillRule,
    GapTooLongError,
    HourlySeries,
    SignalError,
    fill_missing,
    utc_hour,
)

__all__ = [
    "CI_UNIT",
    "DEFAULT_FILL_RULE",
    "PRICE_UNIT",
    "SUMMER_PRICE_USD_PER_KWH",
    "TAMPA_SUMMER_CI_G_PER_KWH",
    "TAMPA_TZ",
    "USD_PER_MWH_TO_USD_PER_KWH",
    "CarbonProvider",
    "DailyProfile",
    "FileProvider",
    "FillRule",
    "GapTooLongError",
    "HourlySeries",
    "OnFallback",
    "PriceProvider",
    "SignalError",
    "SignalFileError",
    "SignalProvider",
    "carbon_provider",
    "carbon_provider_names",
    "fill_missing",
    "load_carbon_csv",
    "load_price_csv",
    "price_provider",
    "price_provider_names",
    "register_carbon_provider",
    "register_price_provider",
    "summer_price",
    "tampa_summer_carbon",
    "utc_hour",
]
