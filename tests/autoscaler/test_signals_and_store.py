"""Epoch signals (last value held on failure, counted) and the plan ConfigMap's bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from casa_sched.autoscaler.epoch_signals import SignalReader
from casa_sched.autoscaler.store import (
    APPLIED_EPOCH_ANNOTATION,
    APPLIED_HASH_ANNOTATION,
    parse_configmap,
    plan_hash,
)
from casa_sched.contract.plan import Container, Plan
from casa_sched.conventions import PLAN_CONFIGMAP_KEY
from casa_sched.metrics import CasaMetrics
from casa_sched.settings import load_settings

START = datetime(2024, 7, 10, 12, 30, tzinfo=UTC)


def _csv(path: Path, start_hour: int, values: list[float]) -> Path:
    rows = ["Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct)"]
    rows += [f"2024-07-10 {start_hour + i:02d}:00:00,USA,Tampa,US-FLA-TEC,{v}" for i, v in enumerate(values)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _value(metrics: CasaMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_signals_per_minute_and_last_value_held_when_the_provider_fails(tmp_path) -> None:
    csv = _csv(tmp_path / "ci.csv", 12, [400.0, 500.0])  # covers 12:00 and 13:00 UTC only
    settings = load_settings(overrides={"signals.carbon_source": "csv", "signals.carbon_csv": str(csv)}, environ={})
    metrics = CasaMetrics()
    now = [1000.0]
    reader = SignalReader(settings, metrics, clock=lambda: now[0])
    sig = reader.read(START, 3600.0)  # 12:30..13:30: 30 minutes at 400, 30 at 500
    assert sig.ci_g_per_kwh.size == 60
    assert sig.ci_g_per_kwh.mean() == pytest.approx(450.0)
    assert _value(metrics, "casa_signal_age_seconds", signal="carbon") == 0.0
    now[0] = 1900.0
    held = reader.read(datetime(2024, 7, 10, 15, 0, tzinfo=UTC), 900.0)  # outside the file
    np.testing.assert_array_equal(held.ci_g_per_kwh, np.full(15, 500.0))  # the last good value, flat
    assert _value(metrics, "casa_signal_age_seconds", signal="carbon") == 900.0
    assert (_value(metrics, "casa_signal_fallback_total", signal="carbon", reason="SignalError") or 0) >= 1


def test_signals_default_profiles() -> None:
    settings = load_settings(environ={})
    sig = SignalReader(settings, CasaMetrics()).read(START, 900.0)
    assert sig.ci_g_per_kwh.shape == sig.price_usd_per_kwh.shape == sig.cooling_factor.shape == (15,)
    # 12:30 UTC is 08:30 in Tampa (EDT): E_t of local hour 8 is 0.36
    assert sig.cooling_factor[0] == pytest.approx(0.36)


def _cm(text: str | None, annotations: dict[str, str] | None = None) -> dict[str, object]:
    return {"metadata": {"name": "casa-plan", "namespace": "casa-system", "resourceVersion": "7",
                         "annotations": annotations or {}},
            "data": {PLAN_CONFIGMAP_KEY: text} if text is not None else {}}


def test_stored_plan_bookkeeping() -> None:
    text = Plan(epoch=4, containers={"f": (Container("a"),)}).to_json()
    h = plan_hash(text)
    assert len(h) == 16
    assert h == plan_hash(text)
    fresh = parse_configmap(_cm(text))
    assert (fresh.plan.epoch if fresh.plan else None, fresh.plan_hash, fresh.applied, fresh.resource_version) == (
        4, h, False, "7")
    done = parse_configmap(_cm(text, {APPLIED_EPOCH_ANNOTATION: "4", APPLIED_HASH_ANNOTATION: h}))
    assert done.applied
    other = parse_configmap(_cm(text, {APPLIED_EPOCH_ANNOTATION: "4", APPLIED_HASH_ANNOTATION: "0" * 16}))
    assert not other.applied  # same epoch, different content: apply again
    assert parse_configmap(None).plan is None
    broken = parse_configmap(_cm("{"))
    assert broken.plan is None
    assert broken.error
    assert "not valid JSON" in broken.error
