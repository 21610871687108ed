"""Type helpers shared by the models: the equations take a float or an array of floats alike."""

from __future__ import annotations

from typing import TypeVar

from casa_sched._typing import FloatArray

# An equation written as plain arithmetic holds element-wise: one value, or one per node/minute.
Num = TypeVar("Num", float, FloatArray)
