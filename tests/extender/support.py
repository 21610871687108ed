"""Shared test helpers (imported as tests.extender.support)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from casa_sched.contract.plan import Plan
from casa_sched.extender.state import ExtenderState
from casa_sched.metrics import CasaMetrics


class FakeClock:
    # 2030-01-01T00:05:00Z: five minutes into the epoch of payloads.plan_doc()'s default plan.
    def __init__(self, now: float = 1_893_456_300.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    state: ExtenderState
    metrics: CasaMetrics
    app: FastAPI
    clock: FakeClock

    def load_plan(self, text: str) -> None:
        self.state.set_plan(Plan.from_json(text), "ok", "test")


@dataclass
class LiveServer:
    url: str
    harness: Harness
