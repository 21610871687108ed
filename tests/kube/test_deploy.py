"""deploy.sh against a real API server (its own fresh control plane; no kubelet, so pods never
become ready: installs use --no-wait except where the wait's error path is the point)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from casa_sched.devcluster.controlplane import REPO_ROOT, ControlPlane

pytestmark = pytest.mark.k8s

DEPLOY = REPO_ROOT / "deploy.sh"


def _run(cp: ControlPlane, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(DEPLOY), *args], capture_output=True, text=True, timeout=180,
                          env=env if env is not None else cp.env(), check=False)


def _exists(cp: ControlPlane, *what: str) -> bool:
    return cp.kubectl("get", *what, "-o", "name", check=False).returncode == 0


def _rv(cp: ControlPlane, *what: str) -> str:
    return cp.kubectl("get", *what, "-o", "jsonpath={.metadata.resourceVersion}").stdout


def test_missing_kubectl_is_a_clear_error(fresh_control_plane: ControlPlane, tmp_path: Path) -> None:
    env = fresh_control_plane.env()
    env["PATH"] = str(tmp_path)  # bash is called by absolute path; kubectl is nowhere
    res = subprocess.run(["/bin/bash", str(DEPLOY)], capture_output=True, text=True, env=env, check=False)
    assert res.returncode == 1
    assert "kubectl not found in PATH" in res.stderr


def test_unreachable_cluster_is_a_clear_error(fresh_control_plane: ControlPlane, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(fresh_control_plane.kubeconfig.read_text().replace(
        fresh_control_plane.server, "https://127.0.0.1:1"))
    res = _run(fresh_control_plane, "--kubeconfig", str(kubeconfig))
    assert res.returncode == 1
    assert "cannot reach the cluster of context 'casa-test'" in res.stderr


def test_too_old_server_is_refused(fresh_control_plane: ControlPlane, tmp_path: Path) -> None:
    real = fresh_control_plane.bin_dir / "kubectl"
    fake = tmp_path / "kubectl"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        'for a in "$@"; do if [ "$a" = version ]; then\n'
        '  echo \'{"clientVersion": {"gitVersion": "v1.35.4"}, "serverVersion": {"major": "1", "minor": "32",'
        ' "gitVersion": "v1.32.9"}}\'; exit 0; fi; done\n'
        f'exec {real} "$@"\n')
    fake.chmod(0o755)
    env = fresh_control_plane.env()
    env["PATH"] = f"{tmp_path}{os.pathsep}{env['PATH']}"
    res = _run(fresh_control_plane, env=env)
    assert res.returncode == 1
    assert "server is v1.32.9; casa-sched needs Kubernetes >= 1.33" in res.stderr


def test_unknown_flag(fresh_control_plane: ControlPlane) -> None:
    res = _run(fresh_control_plane, "--frobnicate")
    assert res.returncode == 1
    assert "unknown argument '--frobnicate'" in res.stderr


def test_install_lifecycle(fresh_control_plane: ControlPlane) -> None:
    cp = fresh_control_plane
    # 1. Dry run on a cluster without the namespace: validated, nothing created.
    res = _run(cp, "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "dry run OK" in res.stderr
    assert "(server dry run)" in res.stdout
    assert not _exists(cp, "namespace", "casa-system")
    assert not _exists(cp, "clusterrole", "casa-extender")

    # 2. Install, then again: the second run changes nothing.
    res = _run(cp, "--no-wait")
    assert res.returncode == 0, res.stderr
    assert "server v1.35" in res.stderr or "server v1." in res.stderr
    for what in (("-n", "casa-system", "deployment", "casa-extender"), ("-n", "casa-system", "service", "casa-extender"),
                 ("-n", "casa-system", "daemonset", "casa-profiler"), ("clusterrole", "casa-profiler"),
                 ("validatingadmissionpolicy", "casa-profiler-power-model-only")):
        assert _exists(cp, *what), what
    before = {w: _rv(cp, "-n", "casa-system", *w) for w in (("deployment", "casa-extender"),
                                                               ("daemonset", "casa-profiler"))}
    res = _run(cp, "--no-wait")
    assert res.returncode == 0, res.stderr
    after = {w: _rv(cp, "-n", "casa-system", *w) for w in before}
    assert after == before, "a re-run must be a no-op"
    assert not _exists(cp, "-n", "casa-system", "deployment", "casa-scheduler")

    # 3. Dry run against the installed release, then an upgrade with another image.
    res = _run(cp, "--dry-run")
    assert res.returncode == 0, res.stderr
    res = _run(cp, "--no-wait", "--image", "registry.example:5000/casa:9.9.9", "--second-scheduler")
    assert res.returncode == 0, res.stderr
    dep = json.loads(cp.kubectl("-n", "casa-system", "get", "deployment", "casa-extender", "-o", "json").stdout)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example:5000/casa:9.9.9"
    ds = json.loads(cp.kubectl("-n", "casa-system", "get", "daemonset", "casa-profiler", "-o", "json").stdout)
    assert {c["image"] for c in ds["spec"]["template"]["spec"]["initContainers"] + ds["spec"]["template"]["spec"][
        "containers"]} == {"registry.example:5000/casa:9.9.9"}
    sched = json.loads(cp.kubectl("-n", "casa-system", "get", "deployment", "casa-scheduler", "-o", "json").stdout)
    version = cp.request("GET", "/version")["gitVersion"]
    assert sched["spec"]["template"]["spec"]["containers"][0]["image"] == f"registry.k8s.io/kube-scheduler:{version}"
    assert _exists(cp, "-n", "casa-system", "configmap", "casa-scheduler-config")

    # 4. Waiting for readiness fails clearly here (no kubelet runs the pod).
    res = _run(cp, "--timeout", "3s")
    assert res.returncode == 1
    assert "casa-extender did not become available within 3s" in res.stderr

    # 5. The plan written by the autoscaler survives a re-install.
    cp.kubectl("-n", "casa-system", "create", "configmap", "casa-plan", "--from-literal=plan.json={}")
    assert _run(cp, "--no-wait").returncode == 0
    assert _exists(cp, "-n", "casa-system", "configmap", "casa-plan")

    # 6. Uninstall (dry run first), twice.
    res = _run(cp, "--uninstall", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert _exists(cp, "clusterrole", "casa-extender")
    res = _run(cp, "--uninstall")
    assert res.returncode == 0, res.stderr
    for what in (("clusterrole", "casa-extender"), ("clusterrolebinding", "casa-profiler"),
                 ("clusterrolebinding", "casa-scheduler-as-kube-scheduler"),
                 ("-n", "kube-system", "rolebinding", "casa-scheduler-auth-reader"),
                 ("validatingadmissionpolicy", "casa-profiler-power-model-only")):
        assert not _exists(cp, *what), what

    def namespace_going() -> bool:
        res = cp.kubectl("get", "namespace", "casa-system", "-o", "json", check=False)
        return res.returncode != 0 or bool(json.loads(res.stdout)["metadata"].get("deletionTimestamp"))

    cp.wait_for("casa-system deleted or terminating", namespace_going, 30)
    res = _run(cp, "--uninstall")
    assert res.returncode == 0, res.stderr
