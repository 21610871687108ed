"""Shared by every test: where the real data lives, ``../shared/data`` beside the repository.

A fresh clone has no ``../shared``; a test that needs real data takes one of these fixtures and
is skipped, naming the missing path, when it is absent. The benchmarks find the same folder
through ``benchmarks._common.SHARED_DATA`` (they must not import test code).
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _require(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not present (the real data lives in ../shared/data beside the repository)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The data folder itself, with ``carbon/`` and ``prices/`` (docs/architecture.md "Data")."""
    _require("carbon")
    _require("prices")
    return SHARED_DATA


@pytest.fixture(scope="session")
def azure_sample_dir() -> Path:
    """The 500-function sample of the Azure Functions 2019 trace."""
    return _require("azure-functions-2019-sample500")


@pytest.fixture(scope="session")
def specpower_csv() -> Path:
    """SPECpower 11-point curves of real servers (from OpenDC)."""
    return _require("power", "specpower_11point_curves_from_opendc.csv")
