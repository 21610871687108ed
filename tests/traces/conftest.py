"""Shared fixtures: the real 500-function sample (skipped when the real data is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from casa_sched.traces import AzureTrace, load_azure2019


@pytest.fixture(scope="session")
def sample_trace(azure_sample_dir: Path) -> AzureTrace:
    return load_azure2019(azure_sample_dir)
