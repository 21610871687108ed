"""Named tolerances of the models and the simulator: what each bare ``1e-9`` or ``1e-12`` meant.

The first three absorb float error in sums (container sizes, epoch edges, sampled power) so a
quantity equal to its bound up to rounding counts as equal. ``EPS_COUNT`` floors a divisor that
is an expected count (requests, requests in service, containers alive), so an empty one divides
to a finite value instead of NaN.
"""

from __future__ import annotations

EPS_CORES = 1e-9  # cores
EPS_S = 1e-9  # seconds
EPS_W = 1e-9  # watts
EPS_COUNT = 1e-12  # requests or containers
