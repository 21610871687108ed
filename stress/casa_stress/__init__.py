"""casa-stress: CPU load at a target utilisation on chosen cores (stress-ng or a built-in burner)."""

from casa_stress.burner import Stress, StressError, available_cores

__all__ = ["Stress", "StressError", "available_cores"]
