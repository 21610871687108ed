"""A scenario's defaults that are not settings: how long to simulate and when the trace starts.

Kept apart from :mod:`casa_sched.experiments.inputs` (which imports the simulator) so that the
command line can show them in its help without loading numba or pandas.
"""

from __future__ import annotations

# Four hours of 15-minute epochs (or the whole trace when it is shorter).
DEFAULT_EPOCHS = 16
# A summer weekday in Tampa, at the trace's first minute (the sample starts at 08:00).
DEFAULT_START_LOCAL = "2024-07-10T08:00"
