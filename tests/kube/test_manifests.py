"""manifests/ against a real API server: server-side dry run, least-privilege RBAC (checked
with impersonation), the profiler's admission policy, and the scheduler configurations loaded
by the real kube-scheduler."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from casa_sched.devcluster.controlplane import REPO_ROOT, ControlPlane, HarnessError

pytestmark = pytest.mark.k8s

MANIFESTS = REPO_ROOT / "manifests"
EXTENDER_SA = "system:serviceaccount:casa-system:casa-extender"
PROFILER_SA = "system:serviceaccount:casa-system:casa-profiler"
AUTOSCALER_SA = "system:serviceaccount:casa-system:casa-autoscaler"
IMAGE = "ghcr.io/casa-sched/casa-sched:0.1.0"


def _render(cp: ControlPlane, path: Path) -> list[dict[str, Any]]:
    out = cp.kubectl("kustomize", str(path)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _by_kind_name(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_base_renders_expected_objects(fresh_control_plane: ControlPlane) -> None:
    objs = _by_kind_name(_render(fresh_control_plane, MANIFESTS))
    for key in [("Namespace", "casa-system"), ("ServiceAccount", "casa-extender"), ("ClusterRole", "casa-extender"),
                ("Role", "casa-extender-plan-reader"), ("Deployment", "casa-extender"), ("Service", "casa-extender"),
                ("ServiceAccount", "casa-profiler"), ("ClusterRole", "casa-profiler"),
                ("DaemonSet", "casa-profiler"), ("ValidatingAdmissionPolicy", "casa-profiler-power-model-only"),
                ("ConfigMap", "casa-prometheus-scrape"), ("ServiceAccount", "casa-autoscaler"),
                ("ClusterRole", "casa-autoscaler"), ("Role", "casa-autoscaler"), ("Deployment", "casa-autoscaler"),
                ("Service", "casa-autoscaler")]:
        assert key in objs, f"missing {key}"
    # The plan is the autoscaler's: a re-apply must never overwrite it.
    assert ("ConfigMap", "casa-plan") not in objs
    for (kind, name), obj in objs.items():
        if kind not in {"Namespace", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy",
                        "ValidatingAdmissionPolicyBinding"}:
            assert obj["metadata"]["namespace"] == "casa-system", (kind, name)

    dep = objs[("Deployment", "casa-extender")]["spec"]["template"]["spec"]
    (c,) = dep["containers"]
    assert c["image"] == IMAGE
    assert c["command"][:2] == ["casa", "extender"]
    assert "--port" in c["command"]
    port = int(c["command"][c["command"].index("--port") + 1])
    svc = objs[("Service", "casa-extender")]["spec"]
    assert svc["ports"][0]["port"] == port == 8888
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    auto = objs[("Deployment", "casa-autoscaler")]["spec"]
    assert auto["replicas"] == 2  # leader + standby on the Lease
    (a,) = auto["template"]["spec"]["containers"]
    assert a["command"][:2] == ["casa", "autoscaler"]
    assert a["image"] == IMAGE
    assert auto["template"]["spec"]["serviceAccountName"] == "casa-autoscaler"
    # Knative's extra permissions are an opt-in file, not part of the base
    assert ("ClusterRole", "casa-autoscaler-knative") not in objs

    ds = objs[("DaemonSet", "casa-profiler")]["spec"]["template"]["spec"]
    (init,) = ds["initContainers"]
    assert init["securityContext"]["privileged"] is True
    assert init["command"] == ["casa-profiler", "run", "--output", "/tmp/model.json"]
    assert {"name": "powercap", "mountPath": "/sys/class/powercap", "readOnly": True} in init["volumeMounts"]
    (pub,) = ds["containers"]
    assert "casa-profiler publish --model /tmp/model.json --node \"$(NODE_NAME)\"" in pub["args"][0]
    assert pub["env"] == [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
    hostpaths = [v["hostPath"]["path"] for v in ds["volumes"] if "hostPath" in v]
    assert hostpaths == ["/sys/class/powercap"]


def test_rbac_rules_are_least_privilege(fresh_control_plane: ControlPlane) -> None:
    objs = _by_kind_name(_render(fresh_control_plane, MANIFESTS))
    assert objs[("ClusterRole", "casa-extender")]["rules"] == [
        {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}]
    assert objs[("Role", "casa-extender-plan-reader")]["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["casa-plan"],
         "verbs": ["get", "list", "watch"]}]
    assert objs[("ClusterRole", "casa-profiler")]["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]}]


@pytest.mark.parametrize("path", ["manifests", "manifests/second-scheduler"])
def test_server_side_dry_run_accepts_everything(fresh_control_plane: ControlPlane, path: str) -> None:
    cp = fresh_control_plane
    # A dry run cannot create the namespace its objects live in; make it for real first.
    if cp.kubectl("get", "namespace", "casa-system", check=False).returncode != 0:
        cp.kubectl("create", "namespace", "casa-system")
    out = cp.kubectl("apply", "--dry-run=server", "-k", str(REPO_ROOT / path)).stdout
    if path.endswith("second-scheduler"):  # an add-on: validate it together with the base
        out += cp.kubectl("apply", "--dry-run=server", "-k", str(MANIFESTS)).stdout
    assert "deployment.apps/casa-extender created (server dry run)" in out
    assert "deployment.apps/casa-autoscaler created (server dry run)" in out
    knative = cp.kubectl("apply", "--dry-run=server", "-f", str(MANIFESTS / "autoscaler" / "rbac-knative.yaml")).stdout
    assert "clusterrole.rbac.authorization.k8s.io/casa-autoscaler-knative created (server dry run)" in knative
    power = cp.kubectl("apply", "--dry-run=server", "-f", str(MANIFESTS / "autoscaler" / "rbac-power.yaml")).stdout
    assert "clusterrole.rbac.authorization.k8s.io/casa-autoscaler-power created (server dry run)" in power
    if path.endswith("second-scheduler"):
        assert "deployment.apps/casa-scheduler created (server dry run)" in out
        assert "rolebinding.rbac.authorization.k8s.io/casa-scheduler-auth-reader created" in out
    # Nothing was created.
    assert cp.kubectl("-n", "casa-system", "get", "deploy", "-o", "name").stdout.strip() == ""


def _uninstall(cp: ControlPlane) -> None:
    """Delete what the base installed and wait until the namespace is really gone (the next
    test may install again; a terminating namespace refuses new objects)."""
    cp.kubectl("delete", "--ignore-not-found", "--timeout=90s", "-k", str(MANIFESTS), check=False)
    cp.wait_for("namespace casa-system gone",
                lambda: cp.kubectl("get", "namespace", "casa-system", check=False).returncode != 0, 90, 0.5)


def _can(cp: ControlPlane, user: str, *args: str) -> bool:
    res = cp.kubectl("auth", "can-i", f"--as={user}", *args, check=False)
    return res.stdout.strip() == "yes"


def test_rbac_and_admission_policy_enforced(fresh_control_plane: ControlPlane) -> None:
    """Apply for real, then act as each service account."""
    cp = fresh_control_plane
    cp.kubectl("apply", "--server-side", "-k", str(MANIFESTS))
    cp.create_node("rbac-n1", annotations={"other/annotation": "keep"})
    try:
        # Extender: read pods and nodes anywhere, only the plan ConfigMap.
        for verb in ("get", "list", "watch"):
            assert _can(cp, EXTENDER_SA, verb, "pods", "--all-namespaces")
            assert _can(cp, EXTENDER_SA, verb, "nodes")
            assert _can(cp, EXTENDER_SA, verb, "configmaps/casa-plan", "-n", "casa-system")
        assert not _can(cp, EXTENDER_SA, "get", "configmaps/other", "-n", "casa-system")
        assert not _can(cp, EXTENDER_SA, "list", "configmaps", "-n", "casa-system")
        assert not _can(cp, EXTENDER_SA, "get", "secrets", "-n", "casa-system")
        assert not _can(cp, EXTENDER_SA, "patch", "nodes")
        assert not _can(cp, EXTENDER_SA, "create", "pods/binding", "-n", "default")
        # Autoscaler: read nodes/pods anywhere, patch pods and pods/resize, scale Deployments,
        # create Events; in casa-system only the plan ConfigMap and its Lease by name.
        for verb in ("get", "list", "watch"):
            assert _can(cp, AUTOSCALER_SA, verb, "pods", "--all-namespaces")
            assert _can(cp, AUTOSCALER_SA, verb, "nodes")
            assert _can(cp, AUTOSCALER_SA, verb, "deployments.apps", "--all-namespaces")
        assert _can(cp, AUTOSCALER_SA, "patch", "pods", "--subresource=resize", "-n", "default")
        assert _can(cp, AUTOSCALER_SA, "patch", "pods", "-n", "default")
        assert _can(cp, AUTOSCALER_SA, "update", "deployments.apps", "--subresource=scale", "-n", "default")
        assert _can(cp, AUTOSCALER_SA, "create", "events", "-n", "default")
        assert _can(cp, AUTOSCALER_SA, "update", "configmaps/casa-plan", "-n", "casa-system")
        assert _can(cp, AUTOSCALER_SA, "update", "leases.coordination.k8s.io/casa-autoscaler", "-n", "casa-system")
        assert not _can(cp, AUTOSCALER_SA, "update", "configmaps/other", "-n", "casa-system")
        assert not _can(cp, AUTOSCALER_SA, "update", "leases.coordination.k8s.io/other", "-n", "casa-system")
        assert not _can(cp, AUTOSCALER_SA, "update", "deployments.apps", "-n", "default")
        assert not _can(cp, AUTOSCALER_SA, "delete", "pods", "-n", "default")
        assert not _can(cp, AUTOSCALER_SA, "patch", "nodes")
        assert not _can(cp, AUTOSCALER_SA, "get", "secrets", "-n", "casa-system")
        assert not _can(cp, AUTOSCALER_SA, "patch", "revisions.serving.knative.dev", "-n", "default")
        # Profiler: get + patch nodes and nothing else.
        assert _can(cp, PROFILER_SA, "get", "nodes")
        assert _can(cp, PROFILER_SA, "patch", "nodes")
        assert not _can(cp, PROFILER_SA, "list", "nodes")
        assert not _can(cp, PROFILER_SA, "delete", "nodes")
        assert not _can(cp, PROFILER_SA, "get", "pods", "-n", "casa-system")
        assert not _can(cp, PROFILER_SA, "get", "configmaps/casa-plan", "-n", "casa-system")

        model = json.dumps({"coefficients": [1, 2, 3, 4, 5]})

        def annotate_allowed() -> bool:
            res = cp.kubectl(f"--as={PROFILER_SA}", "annotate", "--overwrite", "node", "rbac-n1",
                             f"casa.dev/power-model={model}", check=False)
            return res.returncode == 0

        cp.wait_for("profiler may annotate", annotate_allowed, 30, interval_s=0.5)
        node = cp.request("GET", "/api/v1/nodes/rbac-n1")
        assert json.loads(node["metadata"]["annotations"]["casa.dev/power-model"]) == {"coefficients": [1, 2, 3, 4, 5]}

        # The admission policy (its informer needs a moment) then blocks everything else.
        def label_denied() -> bool:
            res = cp.kubectl(f"--as={PROFILER_SA}", "label", "node", "rbac-n1", "evil=1", check=False)
            if res.returncode == 0:  # policy not active yet: undo and retry
                cp.kubectl("label", "node", "rbac-n1", "evil-")
                return False
            return "casa-profiler may only change the casa.dev/power-model annotation" in res.stderr

        cp.wait_for("admission policy active", label_denied, 30, interval_s=0.5)
        other = cp.kubectl(f"--as={PROFILER_SA}", "annotate", "--overwrite", "node", "rbac-n1",
                           "other/annotation=changed", check=False)
        assert other.returncode != 0
        assert "power-model annotation" in other.stderr
        removal = cp.kubectl(f"--as={PROFILER_SA}", "annotate", "node", "rbac-n1", "other/annotation-",
                             check=False)
        assert removal.returncode != 0
        taint = cp.kubectl(f"--as={PROFILER_SA}", "taint", "node", "rbac-n1", "x=y:NoSchedule", check=False)
        assert taint.returncode != 0
        # Still allowed: updating and removing its own annotation. Admins are not affected.
        assert annotate_allowed()
        cp.kubectl(f"--as={PROFILER_SA}", "annotate", "node", "rbac-n1", "casa.dev/power-model-")
        cp.kubectl("label", "node", "rbac-n1", "admin-label=ok")
    finally:
        cp.delete_node("rbac-n1")
        _uninstall(cp)


def _scheduler_loads(cp: ControlPlane, config_file: Path, tmp_path: Path) -> dict[str, Any]:
    """Let the real kube-scheduler load (strictly decode, default, validate) a config file."""
    cfg = yaml.safe_load(config_file.read_text())
    cfg.setdefault("clientConnection", {})["kubeconfig"] = str(cp.kubeconfig)
    cfg["leaderElection"] = {"leaderElect": False}
    src, out = tmp_path / "in.yaml", tmp_path / "out.yaml"
    src.write_text(yaml.safe_dump(cfg))
    res = subprocess.run([str(cp.bin_dir / "kube-scheduler"), f"--config={src}", f"--write-config-to={out}",
                          f"--authentication-kubeconfig={cp.kubeconfig}", f"--authorization-kubeconfig={cp.kubeconfig}",
                          "--bind-address=127.0.0.1", "--secure-port=0"],
                         capture_output=True, text=True, timeout=60, check=False)
    if not out.exists():
        raise HarnessError(f"kube-scheduler rejected {config_file}: {res.stderr[-3000:]}")
    loaded: dict[str, Any] = yaml.safe_load(out.read_text())
    return loaded


@pytest.mark.parametrize(("config", "profile"), [
    ("manifests/scheduler/kube-scheduler-config.yaml", "default-scheduler"),
    ("manifests/second-scheduler/kube-scheduler-config.yaml", "casa-scheduler"),
])
def test_scheduler_configs_load_in_real_kube_scheduler(fresh_control_plane: ControlPlane, tmp_path: Path,
                                                       config: str, profile: str) -> None:
    loaded = _scheduler_loads(fresh_control_plane, REPO_ROOT / config, tmp_path)
    assert [p["schedulerName"] for p in loaded["profiles"]] == [profile]
    (ext,) = loaded["extenders"]
    assert ext["urlPrefix"] == "http://casa-extender.casa-system.svc:8888"
    assert (ext["filterVerb"], ext["prioritizeVerb"]) == ("filter", "prioritize")
    assert ext["nodeCacheCapable"] is True
    assert ext["ignorable"] is True
    assert ext["httpTimeout"] == "1s"
    assert ext["weight"] >= 1


def test_prometheus_scrape_config_is_valid(tmp_path: Path) -> None:
    """promtool checks the scrape job. Debian's Prometheus is built without Kubernetes service
    discovery, so when promtool does not know kubernetes_sd_configs, the job is checked with a
    static target in its place (relabel rules, intervals and paths still get validated)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; see .ci/system-deps.sh)")
    src = MANIFESTS / "prometheus" / "scrape.yml"
    res = subprocess.run([promtool, "check", "config", str(src)], capture_output=True, text=True, check=False)
    if "field kubernetes_sd_configs not found" in res.stdout + res.stderr:
        cfg = yaml.safe_load(src.read_text())
        for job in cfg["scrape_configs"]:
            sd = job.pop("kubernetes_sd_configs")
            assert sd[0]["role"] == "endpointslice"
            assert sd[0]["namespaces"]["names"] == ["casa-system"]
            job["static_configs"] = [{"targets": ["127.0.0.1:8888"]}]
        patched = tmp_path / "scrape.yml"
        patched.write_text(yaml.safe_dump(cfg))
        res = subprocess.run([promtool, "check", "config", str(patched)], capture_output=True, text=True,
                             check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_profiler_daemonset_targets_only_opted_in_nodes(fresh_control_plane: ControlPlane) -> None:
    """The real DaemonSet controller creates one profiler pod per node labelled
    casa.dev/profile=true (and none elsewhere), pinned to that node."""
    cp = fresh_control_plane
    cp.kubectl("apply", "--server-side", "-k", str(MANIFESTS))
    cp.create_node("prof-yes", labels={"casa.dev/profile": "true"})
    cp.create_node("prof-no")
    try:
        def one_pod() -> bool:
            ds = json.loads(cp.kubectl("-n", "casa-system", "get", "ds", "casa-profiler", "-o", "json").stdout)
            pods = cp.request("GET", "/api/v1/namespaces/casa-system/pods?labelSelector="
                                     "app.kubernetes.io%2Fname%3Dcasa-profiler")["items"]
            return ds.get("status", {}).get("desiredNumberScheduled") == 1 and len(pods) == 1

        cp.wait_for("one profiler pod", one_pod, 30, interval_s=0.5)
        (pod,) = cp.request("GET", "/api/v1/namespaces/casa-system/pods?labelSelector="
                                   "app.kubernetes.io%2Fname%3Dcasa-profiler")["items"]
        terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"][0]["matchFields"][0]["values"] == ["prof-yes"]
        assert pod["spec"]["serviceAccountName"] == "casa-profiler"
    finally:
        cp.delete_node("prof-yes")
        cp.delete_node("prof-no")
        _uninstall(cp)


def _overlay(tmp_path: Path, components: list[str]) -> Path:
    """A user's own overlay outside manifests/: the base plus the given components."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    rel = lambda p: os.path.relpath(p, overlay)  # noqa: E731
    doc = {"resources": [rel(MANIFESTS)], "components": [rel(MANIFESTS / c) for c in components]}
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(doc))
    return overlay


def test_tls_component_mounts_the_secret_and_serves_https(fresh_control_plane: ControlPlane, tmp_path: Path) -> None:
    cp = fresh_control_plane
    overlay = _overlay(tmp_path, ["components/extender-tls"])
    dep = _by_kind_name(_render(cp, overlay))[("Deployment", "casa-extender")]["spec"]["template"]
    (c,) = dep["spec"]["containers"]
    assert c["command"][-2:] == ["--tls-cert-file=/etc/casa-extender/tls/tls.crt",
                                 "--tls-key-file=/etc/casa-extender/tls/tls.key"]
    assert dep["spec"]["volumes"] == [{"name": "tls", "secret": {"secretName": "casa-extender-tls",
                                                                 "defaultMode": 0o440}}]
    assert c["volumeMounts"] == [{"name": "tls", "mountPath": "/etc/casa-extender/tls", "readOnly": True}]
    assert c["readinessProbe"]["httpGet"]["scheme"] == c["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert dep["metadata"]["annotations"]["prometheus.io/scheme"] == "https"
    if cp.kubectl("get", "namespace", "casa-system", check=False).returncode != 0:
        cp.kubectl("create", "namespace", "casa-system")
    out = cp.kubectl("apply", "--dry-run=server", "-k", str(overlay)).stdout
    assert "deployment.apps/casa-extender created (server dry run)" in out


def test_network_policy_admits_only_schedulers_and_prometheus(fresh_control_plane: ControlPlane) -> None:
    cp = fresh_control_plane
    objs = _by_kind_name(_render(cp, MANIFESTS / "networkpolicy"))
    spec = objs[("NetworkPolicy", "casa-extender")]["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "casa-extender"}}
    assert spec["policyTypes"] == ["Ingress"]
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": 8888, "protocol": "TCP"}]
    assert [p["podSelector"]["matchLabels"] for p in rule["from"]] == [
        {"app.kubernetes.io/name": "casa-scheduler"}, {"component": "kube-scheduler"},
        {"app.kubernetes.io/name": "prometheus"}]
    if cp.kubectl("get", "namespace", "casa-system", check=False).returncode != 0:
        cp.kubectl("create", "namespace", "casa-system")
    out = cp.kubectl("apply", "--dry-run=server", "-k", str(MANIFESTS / "networkpolicy")).stdout
    assert "networkpolicy.networking.k8s.io/casa-extender created (server dry run)" in out


def test_https_scheduler_config_loads_in_real_kube_scheduler(fresh_control_plane: ControlPlane,
                                                             tmp_path: Path) -> None:
    src = REPO_ROOT / "manifests/scheduler/kube-scheduler-config-https.yaml"
    cfg = yaml.safe_load(src.read_text())
    ca = tmp_path / "ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-keyout", str(tmp_path / "ca.key"), "-out", str(ca), "-subj", "/CN=casa-test-ca"],
                   check=True, capture_output=True)
    cfg["extenders"][0]["tlsConfig"]["caFile"] = str(ca)
    local = tmp_path / "https.yaml"
    local.write_text(yaml.safe_dump(cfg))
    loaded = _scheduler_loads(fresh_control_plane, local, tmp_path)
    (ext,) = loaded["extenders"]
    assert ext["urlPrefix"] == "https://casa-extender.casa-system.svc:8888"
    assert ext["enableHTTPS"] is True
    assert ext["tlsConfig"]["caFile"] == str(ca)
    plain = yaml.safe_load((REPO_ROOT / "manifests/scheduler/kube-scheduler-config.yaml").read_text())
    for key in ("filterVerb", "prioritizeVerb", "weight", "nodeCacheCapable", "ignorable", "httpTimeout"):
        assert ext[key] == plain["extenders"][0][key], key
