"""Shared fixtures: the real signal files in ../shared/data, skipped with a reason when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data beside the repository (carbon/ and prices/ as described in their SOURCES.md)."""
    if not (DATA / "carbon").is_dir() or not (DATA / "prices").is_dir():
        pytest.skip(f"real signal data not present at {DATA} (the shared data folder beside the repository)")
    return DATA
