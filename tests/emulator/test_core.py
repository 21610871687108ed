"""The emulation is the simulator stepped window by window: with the containers a plan fixes, it
gives the simulator's own epoch results (to float rounding), and its exposition is what the
repository's Prometheus readers parse."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from casa_sched.contract.cluster import ClusterSpec, SimParams
from casa_sched.emulator.core import Emulation, EmulationError, LivePodView
from casa_sched.emulator.exposition import render
from casa_sched.experiments.inputs import build_scenario
from casa_sched.settings import CasaSettings
from casa_sched.simulator import Simulator
from casa_sched.simulator.engine import plan_from_mapping


def _scenario(settings: CasaSettings, epochs: int = 2):
    scenario, _ = build_scenario(settings, functions=6, epochs=epochs, start_local=datetime(2024, 7, 10, 8, 0))
    return scenario


def _pods(scenario, nodes: tuple[str, ...], size: int = 1) -> list[LivePodView]:
    return [
        LivePodView("fn", f"{f}-{j}", f, nodes[(i + j) % len(nodes)], "main", 2.0 * size)
        for i, f in enumerate(scenario.workload.function_ids)
        for j in range(2)
    ]


def test_fixed_pods_give_the_simulators_epochs():
    settings = CasaSettings()
    scenario = _scenario(settings)
    cluster = ClusterSpec.uniform(2, settings)
    pods = _pods(scenario, cluster.node_names)
    emulation = Emulation(scenario, cluster)
    while not emulation.done:
        emulation.step(pods)
    params = SimParams.from_settings(settings, autoscale=False)
    sim = Simulator(cluster, params, scenario.epochs * params.epoch_s, water=scenario.water)
    mapping: dict[str, list[tuple[str, int]]] = {}
    for p in pods:
        mapping.setdefault(p.function, []).append((p.node, 1))
    for e in range(scenario.epochs):
        expected = sim.run_epoch(plan_from_mapping(e, mapping), scenario.requests_for(e), scenario.signals_for(e))
        got = emulation.epoch_results[e]
        assert (got.requests, got.served, got.dropped) == (expected.requests, expected.served, expected.dropped)
        assert got.slo_violation_rate == pytest.approx(expected.slo_violation_rate, abs=1e-12)
        assert got.carbon_g == pytest.approx(expected.carbon_g, rel=1e-9)
        assert got.energy_kwh == pytest.approx(expected.energy_kwh, rel=1e-9)
        assert got.cold_starts == expected.cold_starts
    assert sum(e.served for e in emulation.epoch_results) > 0


def test_no_running_pod_serves_nothing_and_a_new_pod_cold_starts():
    settings = CasaSettings()
    scenario = _scenario(settings, epochs=1)
    cluster = ClusterSpec.uniform(1, settings)
    emulation = Emulation(scenario, cluster)
    first = emulation.step([])
    assert first.result.served == 0
    assert first.result.dropped == first.result.requests
    f = scenario.workload.function_ids[0]
    second = emulation.step([LivePodView("fn", "p", f, cluster.node_names[0], "main", 2.0)])
    assert second.result.cold_starts == 1
    assert emulation.sim.containers()[f][0][2] > second.t0_s  # ready after its cold start (eq. 8)


def test_exposition_parses_and_counts_match():
    settings = CasaSettings()
    scenario = _scenario(settings, epochs=1)
    cluster = ClusterSpec.uniform(2, settings)
    emulation = Emulation(scenario, cluster)
    pods = _pods(scenario, cluster.node_names)
    emulation.step(pods)
    first = render(emulation.counters, emulation.pod_cpu_s)
    assert "container_cpu_usage_seconds_total" in first
    assert sum(emulation.pod_cpu_s.values()) == 0.0  # new series start at 0 until a scrape reads them
    emulation.cpu_read(emulation.pod_cpu_s)
    for _ in range(11):
        emulation.step(pods)
    text = render(emulation.counters, emulation.pod_cpu_s, clock_factor=30.0)
    samples = [s for fam in text_string_to_metric_families(text) for s in fam.samples]

    def named(name: str) -> list[Sample]:
        return [s for s in samples if s.name == name]

    started = {s.labels["function_name"]: s.value for s in named("gateway_function_invocation_started_total")
               or named("gateway_function_invocation_started")}  # fmt: skip
    assert started == {f: float(c.requests) for f, c in emulation.counters.items()}
    app = sum(s.value for s in named("revision_app_request_count") + named("revision_app_request_count_total"))
    assert app == sum(c.requests for c in emulation.counters.values())
    cpu = sum(s.value for s in named("container_cpu_usage_seconds_total"))
    assert cpu == pytest.approx(sum(emulation.node_cpu_s.values()) / 30.0)
    for c in emulation.counters.values():
        assert c.finished + c.dropped + c.in_flight == c.requests
        assert any(math.isclose(b, settings.slo.laxity * c.t_ave_s) for b in c.bounds_s)  # the deadline, eq. (6)


def test_window_must_divide_a_minute():
    settings = CasaSettings.model_validate({"simulation": {"autoscale_interval_s": 7.0}})
    scenario = _scenario(settings, epochs=1)
    with pytest.raises(EmulationError, match="divide a minute"):
        Emulation(scenario, ClusterSpec.uniform(1, settings))
