"""The planner contract is importable without the simulator's engine, numba or pandas.

The autoscaler and the extender build and read plans, forecasts and snapshots; they must not pay
for (or depend on) the compiled kernel. Checked in a fresh interpreter, since this test process
has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CONTRACT_MODULES = ("plan", "forecast", "cluster", "results", "snapshot")
# top-level packages or casa_sched subpackages that must stay out of sys.modules
FORBIDDEN = ("numba", "pandas", "casa_sched.simulator", "casa_sched.planners", "casa_sched.experiments")


def _loaded_after_import(module: str) -> list[str]:
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded: list[str] = json.loads(out)
    return loaded


@pytest.mark.parametrize(
    "module",
    [pytest.param(f"casa_sched.contract.{m}", id=m) for m in CONTRACT_MODULES]
    + [pytest.param("casa_sched.contract", id="package")],
)
def test_contract_module_loads_no_engine(module):
    loaded = _loaded_after_import(module)
    assert module in loaded  # the probe really imported it
    heavy = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert heavy == []
