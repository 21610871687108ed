"""Node power states end to end on a real kube-apiserver 1.35 + controller-manager + kube-scheduler
with KWOK nodes (casa_sched.autoscaler.power_hook): a node planned to sleep with only function pods
is cordoned, its pods evicted through the Eviction API, annotated and powered off by a real hook
command; a node with a non-function pod is never touched; a PodDisruptionBudget's 429 is retried;
waking runs the power-on hook and uncordons the node once Ready; re-applying writes nothing."""

from __future__ import annotations

import contextlib
import json
import secrets
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from casa_sched.autoscaler.kubeapi import CountingApiClient, counting_api_client
from casa_sched.autoscaler.power_hook import PowerReport, apply_power_states
from casa_sched.autoscaler.snapshot import read_state
from casa_sched.contract.plan import Plan
from casa_sched.devcluster.controlplane import ControlPlane, HarnessError, pod_manifest, wait_bound
from casa_sched.metrics import CasaMetrics
from casa_sched.settings import load_settings

pytestmark = pytest.mark.k8s

FN = {"casa.dev/function": "thumb"}


def _hook(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A hook that appends its argv to calls.jsonl, and exits 1 while the file ``fail`` exists."""
    calls, fail = tmp_path / "calls.jsonl", tmp_path / "fail"
    script = tmp_path / "hook.py"
    script.write_text(f"import json, os, sys\nopen({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
                      f"sys.exit(1 if os.path.exists({str(fail)!r}) else 0)\n")  # fmt: skip
    return script, calls, fail


def _calls(path: Path) -> list[list[str]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _settings(script: Path) -> Any:
    return load_settings(environ={
        "CASA_AUTOSCALER__POWER_MODE": "hook",
        "CASA_AUTOSCALER__POWER_OFF_COMMAND": json.dumps([sys.executable, str(script), "off", "{node}", "{bmc}"]),
        "CASA_AUTOSCALER__POWER_ON_COMMAND": json.dumps([sys.executable, str(script), "on", "{node}", "{bmc}"]),
        "CASA_AUTOSCALER__POWER_DRAIN_TIMEOUT_S": "30",
    })


def _node(cp: ControlPlane, name: str) -> dict[str, Any]:
    got: dict[str, Any] = cp.request("GET", f"/api/v1/nodes/{name}")
    return got


def _state(cp: ControlPlane, name: str) -> tuple[str | None, bool]:
    n = _node(cp, name)
    return (n["metadata"].get("annotations") or {}).get("casa.dev/power-state"), n["spec"].get("unschedulable") is True


def _pods_on(cp: ControlPlane, namespace: str, node: str) -> list[str]:
    items = cp.request("GET", f"/api/v1/namespaces/{namespace}/pods?fieldSelector=spec.nodeName={node}")["items"]
    return sorted(p["metadata"]["name"] for p in items)


def _pods(cp: ControlPlane, namespace: str, node: str, specs: dict[str, dict[str, str]]) -> None:
    for name, labels in specs.items():
        cp.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod_manifest(name, labels=labels, only_on_nodes=[node]))
    wait_bound(cp, namespace, list(specs))


def _apply(api: CountingApiClient, plan: Plan, settings: Any, metrics: CasaMetrics, dry_run: bool = False) -> PowerReport:
    return apply_power_states(api, plan, read_state(api, []), settings, dry_run, metrics=metrics)


def _api(cp: ControlPlane, read_only: bool = False) -> CountingApiClient:
    api = counting_api_client(cp.kubeconfig, read_only=read_only)
    assert api is not None
    return api


def test_sleep_then_wake_a_node_of_function_pods_and_never_touch_one_with_other_pods(
    k8s_kwok: ControlPlane, kwok_nodes: Any, k8s_namespace: str, tmp_path: Path
) -> None:
    cp, ns = k8s_kwok, k8s_namespace
    tag = secrets.token_hex(3)
    a, b = f"pw-a-{tag}", f"pw-b-{tag}"
    kwok_nodes(a, annotations={"casa.dev/bmc-address": "10.0.0.7"})
    kwok_nodes(b, annotations={"casa.dev/bmc-address": "10.0.0.8"})
    _pods(cp, ns, a, {"fa1": FN, "fa2": FN})
    _pods(cp, ns, b, {"fb1": FN, "db": {"app": "postgres"}})
    b_before = _node(cp, b)["metadata"]["resourceVersion"]
    script, calls, fail = _hook(tmp_path)
    settings, metrics = _settings(script), CasaMetrics()
    api = _api(cp)
    asleep = Plan(epoch=1, containers={}, sleeping_nodes=(a, b))
    blocked: dict[str, tuple[str, ...]] = {}  # the loop's memory: b is warned about once

    def apply(api: CountingApiClient, plan: Plan, metrics: CasaMetrics, dry_run: bool = False) -> PowerReport:
        return apply_power_states(api, plan, read_state(api, []), settings, dry_run, metrics=metrics, blocked=blocked)

    # 1. the power-off hook fails: a is cordoned, drained and stays draining; b is never touched
    fail.write_text("x")
    r1 = apply(api, asleep, metrics)
    assert _state(cp, a) == ("draining", True)
    assert _pods_on(cp, ns, a) == []  # both function pods evicted
    assert _calls(calls) == [["off", a, "10.0.0.7"]]
    assert [(x.node, x.action) for x in r1.failed] == [(a, "power_off")]
    assert "exited 1" in r1.failed[0].detail
    assert metrics.registry.get_sample_value("casa_node_power_actions_total",
                                             {"action": "power_off", "result": "failed"}) == 1.0  # fmt: skip
    assert metrics.registry.get_sample_value("casa_node_power_state", {"node": a, "state": "draining"}) == 1.0
    assert _node(cp, b)["metadata"]["resourceVersion"] == b_before  # no write at all on b
    assert _pods_on(cp, ns, b) == ["db", "fb1"]
    assert (b, "blocked") in {(x.node, x.action) for x in r1.actions}
    assert metrics.registry.get_sample_value("casa_node_power_actions_total",
                                             {"action": "blocked", "result": "skipped"}) == 1.0  # fmt: skip
    assert metrics.registry.get_sample_value("casa_node_power_actions_total",
                                             {"action": "evict", "result": "applied"}) == 2.0  # fmt: skip

    # 2. the next pass retries the hook only (no cordon or eviction again): sleeping
    fail.unlink()
    w0 = api.write_count
    r2 = apply(api, asleep, metrics)
    assert _state(cp, a) == ("sleeping", True)
    assert _calls(calls)[1:] == [["off", a, "10.0.0.7"]]
    assert [(x.action, x.result) for x in r2.actions if x.node == a] == [("power_off", "applied")]
    assert api.write_count - w0 == 1  # the power-state annotation
    assert metrics.registry.get_sample_value("casa_node_power_state", {"node": a, "state": "sleeping"}) == 1.0

    # 3. the same plan again: zero writes, no hook run; b was warned about and counted once
    w0 = api.write_count
    apply(api, asleep, metrics)
    assert api.write_count - w0 == 0
    assert len(_calls(calls)) == 2
    assert metrics.registry.get_sample_value("casa_node_power_actions_total",
                                             {"action": "blocked", "result": "skipped"}) == 1.0  # fmt: skip
    assert _node(cp, b)["metadata"]["resourceVersion"] == b_before

    # 4. a dry run of waking it: reported, nothing written (a read-only client), no hook
    awake = Plan(epoch=2, containers={}, sleeping_nodes=())
    dry = _api(cp, read_only=True)
    rd = apply(dry, awake, CasaMetrics(), dry_run=True)
    assert [(x.node, x.action, x.result) for x in rd.actions] == [(a, "power_on", "dry_run")]
    assert (dry.write_count, len(_calls(calls)), _state(cp, a)) == (0, 2, ("sleeping", True))

    # 5. waking: the power-on hook, then (KWOK keeps the node Ready) uncordoned and on
    r5 = apply(api, awake, metrics)
    assert _calls(calls)[2:] == [["on", a, "10.0.0.7"]]
    assert [(x.action, x.result) for x in r5.actions if x.node == a] == [("power_on", "applied"),
                                                                          ("uncordon", "applied")]  # fmt: skip
    assert _state(cp, a) == ("on", False)
    w0 = api.write_count
    apply(api, awake, metrics)
    assert api.write_count - w0 == 0
    assert _node(cp, b)["metadata"]["resourceVersion"] == b_before


def test_a_disruption_budget_holds_the_drain_until_it_allows_the_eviction(
    k8s_kwok: ControlPlane, kwok_nodes: Any, k8s_namespace: str, tmp_path: Path
) -> None:
    cp, ns = k8s_kwok, k8s_namespace
    c = f"pw-c-{secrets.token_hex(3)}"
    kwok_nodes(c, annotations={"casa.dev/bmc-address": "10.0.0.9"})
    _pods(cp, ns, c, {"fc1": FN})
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "thumb"},
           "spec": {"minAvailable": 1, "selector": {"matchLabels": FN}}}  # fmt: skip
    cp.request("POST", f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets", pdb)
    script, calls, _ = _hook(tmp_path)
    settings, metrics = _settings(script), CasaMetrics()
    api = _api(cp)
    plan = Plan(epoch=1, containers={}, sleeping_nodes=(c,))

    r1 = _apply(api, plan, settings, metrics)
    assert [(x.action, x.result) for x in r1.actions] == [("cordon", "applied"), ("evict", "throttled")]
    assert (_state(cp, c), _pods_on(cp, ns, c), _calls(calls)) == (("draining", True), ["fc1"], [])

    cp.request("DELETE", f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/thumb")
    r2 = _apply(api, plan, settings, metrics)
    assert [(x.action, x.result) for x in r2.actions] == [("evict", "applied"), ("power_off", "applied")]
    assert (_state(cp, c), _pods_on(cp, ns, c), _calls(calls)) == (("sleeping", True), [], [["off", c, "10.0.0.9"]])


def _can(cp: ControlPlane, ns: str, verb: str, resource: str) -> str:
    res = cp.kubectl("auth", "can-i", f"--as=system:serviceaccount:{ns}:power", verb, resource, check=False)
    return res.stdout.strip()


def _rules(path: Path, kind: str, name: str) -> list[dict[str, Any]]:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc["kind"] == kind and doc["metadata"]["name"] == name:
            rules: list[dict[str, Any]] = doc["rules"]
            return rules
    raise AssertionError(f"{kind} {name} not in {path}")


def test_the_manifests_rbac_is_enough_to_drain_and_power_a_node_down(
    k8s_kwok: ControlPlane, kwok_nodes: Any, k8s_namespace: str, tmp_path: Path
) -> None:
    """As a service account holding exactly the rules of manifests/autoscaler/rbac.yaml plus
    rbac-power.yaml (bound here to a test account, not casa-system's): the whole power-down works;
    with rbac.yaml alone the cordon is forbidden and nothing happens to the node."""
    cp, ns = k8s_kwok, k8s_namespace
    root = Path(__file__).resolve().parents[2] / "manifests" / "autoscaler"
    base = _rules(root / "rbac.yaml", "ClusterRole", "casa-autoscaler")
    power = _rules(root / "rbac-power.yaml", "ClusterRole", "casa-autoscaler-power")
    d = f"pw-d-{secrets.token_hex(3)}"
    kwok_nodes(d, annotations={"casa.dev/bmc-address": "10.0.0.10"})
    _pods(cp, ns, d, {"fd1": FN})
    cp.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "power"}})
    script, calls, _ = _hook(tmp_path)
    settings = _settings(script)
    plan = Plan(epoch=1, containers={}, sleeping_nodes=(d,))
    roles = []
    try:
        for i, rules in enumerate((base, base + power)):
            role = f"{ns}-power-{i}"
            roles.append(role)
            cp.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {"metadata": {"name": role},
                                                                                   "rules": rules})  # fmt: skip
            cp.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
                "metadata": {"name": role},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": "power", "namespace": ns}]})
            api = counting_api_client(cp.service_account_kubeconfig(ns, "power", tmp_path / f"sa{i}.yaml"))
            assert api is not None
            want = "no" if i == 0 else "yes"  # the authorizer follows RBAC changes quickly, not instantly
            cp.wait_for(f"can-i patch nodes: {want}", lambda want=want: _can(cp, ns, "patch", "nodes") == want
                        and _can(cp, ns, "list", "nodes") == "yes", timeout_s=30, interval_s=0.2)  # fmt: skip
            report = _apply(api, plan, settings, CasaMetrics())
            if i == 0:
                assert _state(cp, d) == (None, False)
                assert _pods_on(cp, ns, d) == ["fd1"]
                # the cordon was refused (403): recorded, nothing more
                assert [(x.action, x.result) for x in report.actions] == [("cordon", "failed")]
                assert "HTTP 403" in report.actions[0].detail
                assert _calls(calls) == []
                cp.request("DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{role}")
            else:
                assert (_state(cp, d), _pods_on(cp, ns, d)) == (("sleeping", True), [])
                assert _calls(calls) == [["off", d, "10.0.0.10"]]
                assert [(x.action, x.result) for x in report.actions] == [
                    ("cordon", "applied"), ("evict", "applied"), ("power_off", "applied")]
    finally:
        for role in roles:
            with contextlib.suppress(HarnessError):
                cp.request("DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{role}")
            with contextlib.suppress(HarnessError):
                cp.request("DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}")


def test_cluster_autoscaler_mode_lifts_and_restores_the_protection_and_keeps_daemonset_pods(
    k8s_kwok: ControlPlane, kwok_nodes: Any, k8s_namespace: str
) -> None:
    cp, ns = k8s_kwok, k8s_namespace
    e = f"pw-e-{secrets.token_hex(3)}"
    protected = {"cluster-autoscaler.kubernetes.io/scale-down-disabled": "true", "karpenter.sh/do-not-disrupt": "true"}
    kwok_nodes(e, annotations=protected)
    ds_pod = pod_manifest("agent", cpu="10m", memory="16Mi")["spec"]
    ds_pod["nodeSelector"] = {"kubernetes.io/hostname": e}
    cp.request("POST", f"/apis/apps/v1/namespaces/{ns}/daemonsets", {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}}, "spec": ds_pod}}})  # fmt: skip
    cp.wait_for("the DaemonSet's pod on the node", lambda: any(p.startswith("agent-") for p in _pods_on(cp, ns, e)), 60)
    _pods(cp, ns, e, {"fe1": FN})
    settings = load_settings(environ={"CASA_AUTOSCALER__POWER_MODE": "cluster-autoscaler",
                                      "CASA_AUTOSCALER__POWER_DRAIN_TIMEOUT_S": "30"})  # fmt: skip
    api = _api(cp)

    r1 = apply_power_states(api, Plan(epoch=1, containers={}, sleeping_nodes=(e,)), read_state(api, []), settings, False)
    assert [(x.action, x.result) for x in r1.actions] == [("cordon", "applied"), ("evict", "applied"),
                                                           ("power_off", "applied")]  # fmt: skip
    ann = _node(cp, e)["metadata"]["annotations"]
    assert (ann["casa.dev/power-state"], ann["cluster-autoscaler.kubernetes.io/scale-down-disabled"]) == (
        "sleeping", "false")
    assert "karpenter.sh/do-not-disrupt" not in ann
    left = _pods_on(cp, ns, e)  # the function pod is gone, the DaemonSet's stays
    assert [p.split("-")[0] for p in left] == ["agent"]

    r2 = apply_power_states(api, Plan(epoch=2, containers={}), read_state(api, []), settings, False)
    assert [(x.action, x.result) for x in r2.actions] == [("power_on", "applied"), ("uncordon", "applied")]
    ann = _node(cp, e)["metadata"]["annotations"]
    assert {k: ann.get(k) for k in protected} == protected
    assert _state(cp, e) == ("on", False)
