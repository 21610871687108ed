"""Carbon-intensity and price signals behind one interface (DESIGN §3 "Signals").

Pure parts (series, files, profiles) live here; the HTTP providers are in
:mod:`casa_sched.signals.live`, which only the outer layers may import.
"""

from casa_sched.signals.files import SignalFileError, load_carbon_csv, load_price_csv
from casa_sched.signals.profile import (
    SUMMER_PRICE_USD_PER_KWH,
    TAMPA_SUMMER_CI_G_PER_KWH,
    DailyProfile,
    summer_price,
    tampa_summer_carbon,
)
from casa_sched.signals.providers import FileProvider, SignalProvider
from casa_sched.signals.series import HourlySeries, SignalError, fill_missing

__all__ = [
    "SUMMER_PRICE_USD_PER_KWH",
    "TAMPA_SUMMER_CI_G_PER_KWH",
    "DailyProfile",
    "FileProvider",
    "HourlySeries",
    "SignalError",
    "SignalFileError",
    "SignalProvider",
    "fill_missing",
    "load_carbon_csv",
    "load_price_csv",
    "summer_price",
    "tampa_summer_carbon",
]
