"""Shared fixtures: the real 500-function sample (skipped when ../shared is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from casa_sched.traces import AzureTrace, load_azure2019

SAMPLE_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "azure-functions-2019-sample500"
needs_sample = pytest.mark.skipif(
    not SAMPLE_DIR.is_dir(), reason=f"{SAMPLE_DIR} (../shared/data beside the repository) is not present"
)


@pytest.fixture(scope="session")
def sample_trace() -> AzureTrace:
    if not SAMPLE_DIR.is_dir():
        pytest.skip(f"{SAMPLE_DIR} is not present")
    return load_azure2019(SAMPLE_DIR)
