"""Observations above a deadline in a cumulative histogram, linearly interpolated inside its bucket."""

from __future__ import annotations

import math

import pytest

from casa_sched.models.slo import count_above

BOUNDS = (0.1, 0.5, math.inf)
COUNTS = (10.0, 30.0, 32.0)  # 10 <= 0.1 s, 20 in (0.1, 0.5], 2 above 0.5 s


@pytest.mark.parametrize(
    ("threshold_s", "expected"),
    [
        pytest.param(0.2, 17.0, id="inside-bucket"),  # below: 10 + (0.2-0.1)/(0.5-0.1)·20 = 15 → 32 - 15
        pytest.param(0.05, 27.0, id="first-bucket-from-zero"),  # below: 0.05/0.1·10 = 5 → 32 - 5
        pytest.param(0.5, 2.0, id="on-a-bound"),  # exactly the bucket's count at or below 0.5 s
        pytest.param(0.7, 0.0, id="in-inf-bucket-lower-bound"),  # spread above 0.5 s unknown: counted on time
        pytest.param(0.0, 32.0, id="zero-deadline-all-late"),
    ],
)
def test_count_above(threshold_s: float, expected: float) -> None:
    assert count_above(BOUNDS, COUNTS, threshold_s) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("bounds", "counts", "match"),
    [
        pytest.param((0.5, 0.1), (1.0, 2.0), "increase strictly", id="unsorted"),
        pytest.param((0.1,), (1.0, 2.0), "equal-length", id="lengths"),
        pytest.param((), (), "equal-length", id="empty"),
    ],
)
def test_bad_histograms_are_refused(bounds: tuple[float, ...], counts: tuple[float, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        count_above(bounds, counts, 0.2)
