"""casa-stress: CPU load at a target utilisation on chosen cores (stress-ng or a built-in burner)."""

from casa_stress.burner import (
    BACKENDS,
    PERIOD_S,
    Backend,
    Stress,
    StressError,
    StressReport,
    available_cores,
    stress_ng_available,
)

__all__ = [
    "BACKENDS",
    "PERIOD_S",
    "Backend",
    "Stress",
    "StressError",
    "StressReport",
    "available_cores",
    "stress_ng_available",
]
