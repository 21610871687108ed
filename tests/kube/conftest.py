"""Fixtures for tests against a real local Kubernetes control plane (see ``casa_sched/devcluster/controlplane.py``).

Session scope: one control plane (``k8s_control_plane``) whose kube-scheduler is configured
with an ignorable casa extender at ``http://127.0.0.1:<reserved port>``; nothing listens there
until a test starts the extender with ``casa_extender``. Function scope: a fresh namespace,
a node factory that deletes its nodes afterwards, and the extender process.

Binaries come from ``KUBEBUILDER_ASSETS`` or the version cache filled by ``make k8s-bins``
(a cold cache is built on first use, which takes a long time on a small machine).
"""

from __future__ import annotations

import functools
import importlib.util
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from casa_sched.devcluster.controlplane import (
    ControlPlane,
    ExtenderSpec,
    HarnessError,
    Process,
    find_binaries,
    free_port,
    http_ok,
)
from casa_sched.devcluster.kwok import find_kwok

NodeFactory = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def k8s_bin_dir() -> Path:
    try:
        return find_binaries(build=True)
    except HarnessError as exc:
        pytest.fail(f"no Kubernetes binaries: {exc}")


@pytest.fixture(scope="session")
def k8s_control_plane(tmp_path_factory: pytest.TempPathFactory, k8s_bin_dir: Path) -> Iterator[ControlPlane]:
    """etcd + apiserver + controller-manager + scheduler (with an ignorable extender) on loopback."""
    extender = ExtenderSpec(url_prefix=f"http://127.0.0.1:{free_port()}")
    workdir = tmp_path_factory.mktemp("k8s")
    try:
        cp = ControlPlane.start(workdir, bin_dir=k8s_bin_dir, extender=extender)
    except HarnessError as exc:
        pytest.fail(f"local control plane did not start: {exc}")
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def k8s_kubeconfig(k8s_control_plane: ControlPlane) -> Path:
    return k8s_control_plane.kubeconfig


@pytest.fixture(scope="session")
def k8s_api(k8s_control_plane: ControlPlane) -> Any:
    """A ``kubernetes.client.ApiClient`` for the local plane."""
    return k8s_control_plane.api_client()


@pytest.fixture
def k8s_namespace(k8s_control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace (with its default ServiceAccount); pods force-deleted afterwards."""
    name = f"t-{secrets.token_hex(4)}"
    k8s_control_plane.create_namespace(name)
    try:
        yield name
    finally:
        k8s_control_plane.delete_namespace(name)


@pytest.fixture
def k8s_nodes(k8s_control_plane: ControlPlane) -> Iterator[NodeFactory]:
    """``k8s_nodes("n1", cpu="4", memory="8Gi", pods=10)`` creates a Ready node; all are deleted after."""
    created: list[str] = []

    def make(name: str, **kwargs: Any) -> dict[str, Any]:
        node = k8s_control_plane.create_node(name, **kwargs)
        created.append(name)
        return node

    try:
        yield make
    finally:
        for name in created:
            k8s_control_plane.delete_node(name)


@pytest.fixture(scope="session")
def k8s_kwok(k8s_control_plane: ControlPlane) -> ControlPlane:
    """The session plane with ``kwok`` running for nodes labelled ``casa.dev/kwok-node=true``."""
    try:
        exe = find_kwok(build=True)
        if "kwok" not in k8s_control_plane.processes:
            k8s_control_plane.start_kwok(exe)
    except HarnessError as exc:
        pytest.fail(f"kwok did not start: {exc}")
    return k8s_control_plane


@pytest.fixture
def kwok_nodes(k8s_kwok: ControlPlane) -> Iterator[NodeFactory]:
    """``kwok_nodes("k1", cpu="4", memory="8Gi")`` creates a KWOK-managed node and waits until KWOK
    has made it Ready; its pods become Running. All are deleted after the test."""
    created: list[str] = []

    def make(name: str, **kwargs: Any) -> dict[str, Any]:
        node = k8s_kwok.create_kwok_node(name, **kwargs)
        created.append(name)
        return node

    try:
        yield make
    finally:
        for name in created:
            k8s_kwok.delete_node(name)


@functools.cache
def _extender_missing_reason() -> str | None:
    """Why ``casa extender`` cannot run here, or None. Checked once per session."""
    if importlib.util.find_spec("casa_sched.extender") is None:
        return ("casa_sched.extender is not importable; "
                "the extender end-to-end tests cannot run without it")
    casa = Path(sys.executable).parent / "casa"
    res = subprocess.run([str(casa), "extender", "--help"], capture_output=True, text=True, timeout=60, check=False)
    if res.returncode != 0:
        words = [ln.strip(" │╭╰─╮╯") for ln in (res.stderr + res.stdout).splitlines()]
        detail = "; ".join(w for w in words if any(ch.isalpha() for ch in w))[-300:]
        return (f"`casa extender` is not available (`casa extender --help` exited "
                f"{res.returncode}: {detail}); "
                "the extender end-to-end tests cannot run without it")
    return None


@pytest.fixture
def casa_extender(k8s_control_plane: ControlPlane, tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Factory: ``casa_extender(*extra_args)`` starts ``casa extender`` on the port the session's
    kube-scheduler calls, watching the local plane, and waits for ``/readyz``. Stopped after
    the test. Publish the plan first: the extender loads it before it reports ready.

    Skips loudly (reason in the ``-ra`` summary) only when the extender package does not exist
    at all; any failure of an existing extender fails the test.
    """
    reason = _extender_missing_reason()
    if reason:
        pytest.skip(reason)
    spec = k8s_control_plane.extender
    assert spec is not None, "the session scheduler has no extender configured"
    port = urlsplit(spec.url_prefix).port
    assert port is not None
    started: list[Process] = []

    def start(*extra_args: str, kubeconfig: Path | None = None, timeout_s: float = 30.0) -> Process:
        casa = Path(sys.executable).parent / "casa"
        argv = [str(casa), "extender", "--host", "127.0.0.1", "--port", str(port),
                "--kubeconfig", str(kubeconfig or k8s_control_plane.kubeconfig), *extra_args]
        proc = Process(f"casa-extender-{port}-{len(started)}", argv, tmp_path, env=k8s_control_plane.env())
        started.append(proc)
        deadline = time.monotonic() + timeout_s
        while not http_ok(f"http://127.0.0.1:{port}/readyz"):
            if not proc.alive():
                pytest.fail(f"casa extender exited ({proc.popen.returncode}):\n{proc.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"casa extender not ready on port {port} after {timeout_s:.0f} s:\n{proc.log_tail()}")
            time.sleep(0.2)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.stop()


@pytest.fixture(scope="module")
def fresh_control_plane(tmp_path_factory: pytest.TempPathFactory, k8s_bin_dir: Path) -> Iterator[ControlPlane]:
    """A separate, empty plane per test module (apiserver + controller-manager, no scheduler),
    for tests that install cluster-wide objects (manifests, deploy.sh) or need a pristine API."""
    workdir = tmp_path_factory.mktemp("k8s-fresh")
    try:
        cp = ControlPlane.start(workdir, bin_dir=k8s_bin_dir, scheduler=False)
    except HarnessError as exc:
        pytest.fail(f"local control plane did not start: {exc}")
    try:
        yield cp
    finally:
        cp.stop()
