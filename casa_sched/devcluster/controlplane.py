"""A real, local Kubernetes control plane: for tests, benchmarks and a developer cluster.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler run as child processes on
127.0.0.1 only, from binaries built by ``hack/build-k8s.sh`` (or found in ``KUBEBUILDER_ASSETS``).
There is no kubelet: Nodes are API objects created by :meth:`ControlPlane.create_node`, pods get
bound by the real scheduler and then stay ``Pending`` forever (nothing runs them) — unless
:meth:`ControlPlane.start_kwok` runs KWOK and the node was made by
:meth:`ControlPlane.create_kwok_node`: then the node heartbeats Ready and its pods run and report
their size, including after an in-place resize (:mod:`casa_sched.devcluster.kwok`).

It imports nothing else of ``casa_sched`` and needs only the standard library and PyYAML at
import time (the ``kubernetes`` client is imported by :meth:`ControlPlane.api_client` only), so
the tests in ``tests/kube``, ``benchmarks/scheduler_throughput.py`` and a developer cluster all
use this one implementation. The binaries are found or built from a source checkout
(``hack/build-k8s.sh`` beside this package). Typical use::

    with ControlPlane.start(workdir, extender=ExtenderSpec("http://127.0.0.1:8888")) as cp:
        cp.create_node("n1", cpu="8", memory="16Gi")
        cp.kubectl("get", "nodes")
        api = cp.api_client()            # kubernetes.client.ApiClient

Authentication: a static bearer token for user ``casa-admin`` in group ``system:masters`` (and
a client CA so client certificates work too); authorization: RBAC. The apiserver serving
certificate and the service-account signing key are made with ``openssl``.

Node taints: the ``TaintNodesByCondition`` admission plugin is disabled and the controller
manager runs without ``node-lifecycle-controller`` and ``taint-eviction-controller``, since no
kubelet heartbeats the fake nodes; otherwise every node would carry
``node.kubernetes.io/not-ready`` (or ``unreachable``) taints and no pod would schedule.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-k8s.sh"
DEFAULT_K8S_VERSION = "v1.35.4"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
ADMIN_USER = "casa-admin"
# Controllers that would taint or evict kubelet-less nodes (names from
# cmd/kube-controller-manager/names in Kubernetes 1.35).
DISABLED_CONTROLLERS = ("node-lifecycle-controller", "taint-eviction-controller")
SERVICE_CIDR = "10.0.0.0/24"


class HarnessError(RuntimeError):
    """The control plane could not be built, started or reached; the message says why."""


# -- binaries ----------------------------------------------------------------------------------


def cache_bin_dir(version: str | None = None) -> Path:
    """Where ``hack/build-k8s.sh`` caches the binaries of ``version``."""
    root = os.environ.get("CASA_K8S_CACHE") or str(Path.home() / ".cache" / "casa-sched" / "k8s")
    return Path(root) / (version or os.environ.get("CASA_K8S_VERSION") or DEFAULT_K8S_VERSION) / "bin"


def _has_all(directory: Path) -> bool:
    return all(os.access(directory / b, os.X_OK) for b in BINARIES)


def find_binaries(*, build: bool = True) -> Path:
    """The directory holding etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl.

    ``KUBEBUILDER_ASSETS`` wins when it holds all five; else the version cache. With ``build``
    a cold cache is filled by running ``hack/build-k8s.sh`` (slow: a cold build compiles
    Kubernetes from source; see the script).
    """
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and _has_all(Path(assets)):
        return Path(assets)
    cached = cache_bin_dir()
    if _has_all(cached) and (cached / ".complete").exists():
        return cached
    if not build:
        raise HarnessError(
            f"Kubernetes binaries not found in KUBEBUILDER_ASSETS={assets!r} nor in {cached}; "
            f"run `make k8s-bins` (or {BUILD_SCRIPT})"
        )
    if shutil.which("go") is None:
        raise HarnessError(f"Kubernetes binaries missing in {cached} and no Go toolchain to build them")
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HarnessError(f"{BUILD_SCRIPT} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    built = Path(result.stdout.strip().splitlines()[-1])
    if not _has_all(built):
        raise HarnessError(f"{BUILD_SCRIPT} reported {built} but it lacks one of {BINARIES}")
    return built


# -- small helpers -----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise HarnessError("openssl not found; install it (see .ci/system-deps.sh)")
    result = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HarnessError(f"openssl {' '.join(args[:2])} failed: {result.stderr.strip()}")


@dataclass(frozen=True)
class Pki:
    """Files made by :func:`make_pki` (all under one directory)."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    sa_key: Path
    sa_pub: Path


def make_pki(directory: Path) -> Pki:
    """A throw-away CA, an apiserver serving cert for 127.0.0.1/localhost and an SA key pair."""
    directory.mkdir(parents=True, exist_ok=True)
    d = directory
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=casa-test-ca", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "apiserver.key", "-out", "apiserver.csr",
             "-subj", "/CN=kube-apiserver", cwd=d)
    (d / "apiserver.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,IP:10.0.0.1\n"
        "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n"
    )
    _openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "apiserver.crt", "-days", "2", "-extfile", "apiserver.ext", cwd=d)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=d)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)
    for key in ("ca.key", "apiserver.key", "sa.key"):
        (d / key).chmod(0o600)
    return Pki(d / "ca.crt", d / "ca.key", d / "apiserver.crt", d / "apiserver.key", d / "sa.key", d / "sa.pub")


try:  # resolved in the parent: the child (after fork) must not import or load anything
    import ctypes

    _PRCTL: Any = ctypes.CDLL(None, use_errno=True).prctl
except (ImportError, OSError, AttributeError):  # pragma: no cover - not Linux/glibc
    _PRCTL = None


def _set_parent_death_signal() -> None:  # pragma: no cover - runs in the child
    """Linux: the child gets SIGKILL if the test process dies without tearing down."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Process:
    """One child process with its log file; stopped by its own pid only.

    By default the child dies with its parent (``PR_SET_PDEATHSIG``). With ``detach`` it runs in
    a session of its own and outlives the process that started it (``casa dev-cluster up``
    returns while the cluster runs; ``casa dev-cluster down`` stops it by the pid recorded then).
    """

    def __init__(self, name: str, argv: Sequence[str], log_dir: Path, env: Mapping[str, str] | None = None,
                 *, detach: bool = False):
        self.name = name
        self.detach = detach
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"$ {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            # Only a prctl call in the child (nothing that could take a lock another thread held
            # at fork time), so it is safe even when the caller runs threads.
            preexec_fn=None if detach else _set_parent_death_signal,  # noqa: PLW1509
            start_new_session=detach,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)  # to this pid only
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()


def _wait(what: str, check: Any, timeout_s: float, proc: Process | None = None, interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    last_error = ""
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise HarnessError(f"{proc.name} exited with {proc.popen.returncode} while waiting for {what}:\n"
                               f"{proc.log_tail()}")
        try:
            if check():
                return
        except Exception as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(interval_s)
    tail = f"\n--- {proc.name} log ---\n{proc.log_tail()}" if proc is not None else ""
    raise HarnessError(f"timed out after {timeout_s:.0f}s waiting for {what} ({last_error}){tail}")


def _insecure_ok(url: str) -> bool:
    """GET a component's own self-signed HTTPS health endpoint on loopback."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=2) as resp:
            return bool(resp.status == 200)
    except urllib.error.URLError:
        return False


# -- scheduler configuration -------------------------------------------------------------------


@dataclass(frozen=True)
class ExtenderSpec:
    """The ``extenders:`` entry the scheduler gets (Kubernetes field names; as in ``manifests/scheduler``)."""

    url_prefix: str
    filter_verb: str = "filter"
    prioritize_verb: str = "prioritize"
    weight: int = 5  # as shipped in manifests/scheduler (the extender assumes it)
    node_cache_capable: bool = True
    ignorable: bool = True
    http_timeout: str = "1s"
    ca_pem: bytes | None = None  # HTTPS: the CA (or self-signed certificate) the scheduler trusts

    def to_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "urlPrefix": self.url_prefix,
            "filterVerb": self.filter_verb,
            "prioritizeVerb": self.prioritize_verb,
            "weight": self.weight,
            "nodeCacheCapable": self.node_cache_capable,
            "ignorable": self.ignorable,
            "httpTimeout": self.http_timeout,
            "enableHTTPS": self.ca_pem is not None,
        }
        if self.ca_pem is not None:  # tlsConfig.caData is []byte: base64 in YAML
            cfg["tlsConfig"] = {"caData": base64.b64encode(self.ca_pem).decode()}
        return cfg


def scheduler_config(
    kubeconfig: Path,
    extender: ExtenderSpec | None = None,
    profiles: Sequence[str] = ("default-scheduler",),
    qps: float = 50.0,
    burst: int = 100,
) -> dict[str, Any]:
    """A ``kubescheduler.config.k8s.io/v1`` KubeSchedulerConfiguration for the local plane."""
    cfg: dict[str, Any] = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig), "qps": qps, "burst": burst},
        "leaderElection": {"leaderElect": False},
        "profiles": [{"schedulerName": name} for name in profiles],
    }
    if extender is not None:
        cfg["extenders"] = [extender.to_config()]
    return cfg


# -- the control plane -------------------------------------------------------------------------


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler on 127.0.0.1.

    Build it with :meth:`start`; stop it with :meth:`stop` (or use it as a context manager).
    """

    workdir: Path
    bin_dir: Path
    token: str = "casa-test-admin-token"
    api_port: int = 0
    processes: dict[str, Process] = field(default_factory=dict)
    pki: Pki | None = None
    extender: ExtenderSpec | None = None
    scheduler_ports: dict[str, int] = field(default_factory=dict)
    detach: bool = False  # processes outlive this Python process (see Process)
    _api_client: Any = None

    # -- lifecycle ------------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        bin_dir: Path | None = None,
        extender: ExtenderSpec | None = None,
        scheduler_profiles: Sequence[str] = ("default-scheduler",),
        scheduler_qps: float = 50.0,
        scheduler_burst: int = 100,
        controller_manager: bool = True,
        scheduler: bool = True,
        timeout_s: float = 90.0,
        token: str | None = None,
        detach: bool = False,
    ) -> ControlPlane:
        cp = cls(workdir=Path(workdir), bin_dir=bin_dir or find_binaries(), detach=detach)
        if token is not None:
            cp.token = token
        try:
            cp._start_etcd_and_apiserver(timeout_s)
            if controller_manager:
                cp.start_controller_manager(timeout_s)
            if scheduler:
                cp.start_scheduler(extender, scheduler_profiles, qps=scheduler_qps, burst=scheduler_burst,
                                   timeout_s=timeout_s)
        except BaseException:
            cp.stop()
            raise
        return cp

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop every process this plane started, newest first, each by its own pid."""
        if self._api_client is not None:
            with contextlib.suppress(Exception):
                self._api_client.close()
            self._api_client = None
        for name in reversed(list(self.processes)):
            self.processes.pop(name).stop()

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        """An admin (system:masters) kubeconfig for this plane; pass it to kubectl or clients."""
        return self.workdir / "admin.kubeconfig"

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _start_etcd_and_apiserver(self, timeout_s: float) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki = pki = make_pki(self.workdir / "pki")
        etcd_client, etcd_peer = free_port(), free_port()
        client_url, peer_url = f"http://127.0.0.1:{etcd_client}", f"http://127.0.0.1:{etcd_peer}"
        etcd = self.spawn("etcd", [
            self._bin("etcd"),
            "--name=casa-test",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=casa-test={peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ])
        _wait("etcd /health", lambda: http_ok(f"{client_url}/health"), timeout_s, etcd)

        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{self.token},{ADMIN_USER},casa-admin-uid,"system:masters"\n')
        tokens.chmod(0o600)
        self.api_port = free_port()
        apiserver = self.spawn("kube-apiserver", [
            self._bin("kube-apiserver"),
            f"--etcd-servers={client_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.api_port}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            # No kubelet heartbeats the fake nodes: keep the not-ready taint off them.
            "--disable-admission-plugins=TaintNodesByCondition",
            "--profiling=false",
            "--v=1",
        ])
        self._write_kubeconfig()
        _wait("kube-apiserver /readyz", self._api_ready, timeout_s, apiserver)

    def _write_kubeconfig(self) -> None:
        assert self.pki is not None
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "casa-test", "cluster": {"server": self.server,
                                                           "certificate-authority": str(self.pki.ca_cert)}}],
            "users": [{"name": ADMIN_USER, "user": {"token": self.token}}],
            "contexts": [{"name": "casa-test", "context": {"cluster": "casa-test", "user": ADMIN_USER}}],
            "current-context": "casa-test",
            "preferences": {},
        }
        self.kubeconfig.write_text(yaml.safe_dump(cfg))
        self.kubeconfig.chmod(0o600)

    def _api_ready(self) -> bool:
        assert self.pki is not None
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        req = urllib.request.Request(f"{self.server}/readyz", headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:
                return bool(resp.status == 200)
        except urllib.error.URLError:
            return False

    def spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Process:
        """Start a process that belongs to this plane (logged under :attr:`log_dir`, stopped by
        :meth:`stop`, detached when the plane is)."""
        if name in self.processes and self.processes[name].alive():
            raise HarnessError(f"{name} is already running (pid {self.processes[name].pid})")
        proc = Process(name, argv, self.log_dir, env=env, detach=self.detach)
        self.processes[name] = proc
        return proc

    def start_controller_manager(self, timeout_s: float = 90.0) -> None:
        assert self.pki is not None
        port = free_port()
        controllers = ",".join(["*", *(f"-{c}" for c in DISABLED_CONTROLLERS)])
        kcm = self.spawn("kube-controller-manager", [
            self._bin("kube-controller-manager"),
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.workdir / 'kcm-certs'}",
            "--leader-elect=false",
            f"--controllers={controllers}",
            f"--service-account-private-key-file={self.pki.sa_key}",
            f"--root-ca-file={self.pki.ca_cert}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--profiling=false",
            "--v=1",
        ])
        _wait("kube-controller-manager /healthz", lambda: _insecure_ok(f"https://127.0.0.1:{port}/healthz"),
              timeout_s, kcm)

    def start_scheduler(
        self,
        extender: ExtenderSpec | None = None,
        profiles: Sequence[str] = ("default-scheduler",),
        *,
        qps: float = 50.0,
        burst: int = 100,
        timeout_s: float = 90.0,
        name: str = "kube-scheduler",
    ) -> Path:
        """Start a kube-scheduler (with ``extender`` if given); returns its config file."""
        port = free_port()
        if name == "kube-scheduler":
            self.extender = extender
        config = self.workdir / f"{name}-config.yaml"
        config.write_text(yaml.safe_dump(scheduler_config(self.kubeconfig, extender, profiles, qps, burst)))
        sched = self.spawn(name, [
            self._bin("kube-scheduler"),
            f"--config={config}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.workdir / (name + '-certs')}",
            "--v=1",
        ])
        _wait(f"{name} /healthz", lambda: _insecure_ok(f"https://127.0.0.1:{port}/healthz"), timeout_s, sched)
        self.scheduler_ports[name] = port
        return config

    def scheduler_metrics(self, name: str = "kube-scheduler") -> str:
        """The Prometheus text of a running scheduler's /metrics (admin token; self-signed TLS)."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request(f"https://127.0.0.1:{self.scheduler_ports[name]}/metrics",
                                     headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return str(resp.read().decode())

    def stop_scheduler(self, name: str = "kube-scheduler") -> None:
        proc = self.processes.pop(name, None)
        if proc is not None:
            proc.stop()

    def restart_scheduler(self, extender: ExtenderSpec | None = None,
                          profiles: Sequence[str] = ("default-scheduler",), **kwargs: Any) -> Path:
        self.stop_scheduler(kwargs.get("name", "kube-scheduler"))
        return self.start_scheduler(extender, profiles, **kwargs)

    # -- KWOK -----------------------------------------------------------------------------------
    def start_kwok(self, kwok_bin: Path | None = None, *, extra_stages: Sequence[Path] = (),
                   timeout_s: float = 60.0) -> Process:
        """Start ``kwok`` for the Nodes labelled ``casa.dev/kwok-node=true`` (see
        :mod:`casa_sched.devcluster.kwok`: what it makes happen and what it cannot model)."""
        from casa_sched.devcluster.kwok import KWOK_NODE_LABEL, POD_CIDR, find_kwok, write_kwok_config

        exe = kwok_bin or find_kwok()
        config = write_kwok_config(self.workdir / "kwok-stages.yaml", tuple(extra_stages))
        port = free_port()
        proc = self.spawn("kwok", [
            str(exe),
            f"--kubeconfig={self.kubeconfig}",
            f"--config={config}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-label-selector={KWOK_NODE_LABEL}=true",
            f"--cidr={POD_CIDR}",
            "--node-ip=127.0.0.1",
            f"--server-address=127.0.0.1:{port}",
        ])
        _wait("kwok /healthz", lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), timeout_s, proc)
        return proc

    def create_kwok_node(
        self,
        name: str,
        *,
        cpu: str = "8",
        memory: str = "16Gi",
        pods: int = 110,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        timeout_s: float = 60.0,
    ) -> dict[str, Any]:
        """Create a Node that KWOK manages (capacity = allocatable) and wait until KWOK has made
        it Ready. ``annotations`` may carry ``casa.dev/power-model``. Needs :meth:`start_kwok`."""
        from casa_sched.devcluster.kwok import KWOK_NODE_LABEL

        if "kwok" not in self.processes or not self.processes["kwok"].alive():
            raise HarnessError("kwok is not running on this plane; call start_kwok() first")
        resources = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "100Gi"}
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": "amd64", KWOK_NODE_LABEL: "true", **(labels or {})},
                "annotations": dict(annotations or {}),
            },
            "spec": {},
            # No conditions: KWOK's node-initialize stage fills them (and addresses, nodeInfo).
            "status": {"capacity": resources, "allocatable": resources},
        }
        self.request("POST", "/api/v1/nodes", node)
        got: dict[str, Any] = {}

        def ready() -> bool:
            got.clear()
            got.update(self.request("GET", f"/api/v1/nodes/{name}"))
            return any(c.get("type") == "Ready" and c.get("status") == "True"
                       for c in got.get("status", {}).get("conditions") or [])

        _wait(f"kwok to make node {name} Ready", ready, timeout_s, self.processes["kwok"], interval_s=0.2)
        return got

    # -- clients --------------------------------------------------------------------------------
    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run the plane's own kubectl against it; raises with stderr when ``check`` fails."""
        argv = [self._bin("kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout_s, check=False)
        if check and result.returncode != 0:
            raise HarnessError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path, duration: str = "1h") -> Path:
        """A kubeconfig that authenticates as a ServiceAccount (a TokenRequest token)."""
        assert self.pki is not None
        token = self.kubectl("-n", namespace, "create", "token", name, f"--duration={duration}").stdout.strip()
        user = f"system:serviceaccount:{namespace}:{name}"
        cfg = {
            "apiVersion": "v1", "kind": "Config", "current-context": "sa", "preferences": {},
            "clusters": [{"name": "casa-test", "cluster": {"server": self.server,
                                                           "certificate-authority": str(self.pki.ca_cert)}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "casa-test", "user": user}}],
        }
        path.write_text(yaml.safe_dump(cfg))
        path.chmod(0o600)
        return path

    def env(self) -> dict[str, str]:
        """Environment for a child process that should talk to this plane (KUBECONFIG, PATH)."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    def api_client(self) -> Any:
        """A shared ``kubernetes.client.ApiClient`` for this plane (needs the kubernetes package)."""
        if self._api_client is None:
            from kubernetes import config

            self._api_client = config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]
        return self._api_client

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> Any:
        """A raw JSON API call (no client library); returns the decoded body."""
        assert self.pki is not None
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.server}{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": content_type, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise HarnessError(f"{method} {path}: HTTP {exc.code}: {exc.read().decode(errors='replace')}") from exc
        return json.loads(raw) if raw else None

    # -- objects --------------------------------------------------------------------------------
    def create_node(
        self,
        name: str,
        *,
        cpu: str = "8",
        memory: str = "16Gi",
        pods: int = 110,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create a schedulable, Ready Node with the given capacity (= allocatable)."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        resources = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "100Gi"}
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": "amd64", "casa.test/fake-node": "true", **(labels or {})},
                "annotations": dict(annotations or {}),
            },
            "spec": {},
            "status": {
                "capacity": resources,
                "allocatable": resources,
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "fake node",
                     "lastHeartbeatTime": now, "lastTransitionTime": now},
                    *({"type": t, "status": "False", "reason": "Fake", "lastHeartbeatTime": now,
                       "lastTransitionTime": now} for t in ("MemoryPressure", "DiskPressure", "PIDPressure")),
                ],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
                "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "v1.35.4",
                             "kubeProxyVersion": "", "bootID": "", "machineID": "", "systemUUID": "",
                             "containerRuntimeVersion": "fake://0", "kernelVersion": "", "osImage": "fake"},
            },
        }
        created: dict[str, Any] = self.request("POST", "/api/v1/nodes", node)
        if created.get("spec", {}).get("taints"):
            # Belt and braces: nothing should taint it, but an untolerated taint blocks every pod.
            created = self.request("PATCH", f"/api/v1/nodes/{name}", {"spec": {"taints": None}},
                                   "application/merge-patch+json")
        return created

    def delete_node(self, name: str) -> None:
        with contextlib.suppress(HarnessError):
            self.request("DELETE", f"/api/v1/nodes/{name}")

    def create_namespace(self, name: str, timeout_s: float = 30.0) -> None:
        """Create a namespace and wait for its ``default`` ServiceAccount (pods need it)."""
        self.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": name}})
        _wait(f"serviceaccount {name}/default",
              lambda: self.request("GET", f"/api/v1/namespaces/{name}/serviceaccounts/default") is not None,
              timeout_s)

    def delete_namespace(self, name: str) -> None:
        """Force-delete its pods (no kubelet confirms graceful deletion), then the namespace."""
        with contextlib.suppress(HarnessError):
            self.request("DELETE", f"/api/v1/namespaces/{name}/pods?gracePeriodSeconds=0")
        with contextlib.suppress(HarnessError):
            self.request("DELETE", f"/api/v1/namespaces/{name}")

    def apply_configmap(self, namespace: str, name: str, data: Mapping[str, str]) -> dict[str, Any]:
        """Create or replace a ConfigMap (creating the namespace if needed)."""
        if self._get_or_none(f"/api/v1/namespaces/{namespace}") is None:
            self.create_namespace(namespace)
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
                "data": dict(data)}
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        if self._get_or_none(f"{path}/{name}") is None:
            created: dict[str, Any] = self.request("POST", path, body)
            return created
        replaced: dict[str, Any] = self.request("PUT", f"{path}/{name}", body)
        return replaced

    def _get_or_none(self, path: str) -> Any:
        try:
            return self.request("GET", path)
        except HarnessError as exc:
            if "HTTP 404" in str(exc):
                return None
            raise

    def wait_for(self, what: str, check: Any, timeout_s: float = 30.0, interval_s: float = 0.1) -> None:
        """Poll ``check()`` until it returns true; raises :class:`HarnessError` on timeout."""
        _wait(what, check, timeout_s, interval_s=interval_s)


def pod_manifest(
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    cpu: str = "100m",
    memory: str = "64Mi",
    cpu_limit: str | None = None,
    memory_limit: str | None = None,
    only_on_nodes: Sequence[str] | None = None,
    scheduler_name: str | None = None,
    container: str = "app",
) -> dict[str, Any]:
    """A minimal pod (never runs: there is no kubelet) with requests and optional limits."""
    resources: dict[str, Any] = {"requests": {"cpu": cpu, "memory": memory}}
    limits = {k: v for k, v in (("cpu", cpu_limit), ("memory", memory_limit)) if v}
    if limits:
        resources["limits"] = limits
    spec: dict[str, Any] = {
        "containers": [{"name": container, "image": "registry.invalid/casa/noop:0", "resources": resources}],
        "terminationGracePeriodSeconds": 0,
        "automountServiceAccountToken": False,
    }
    if only_on_nodes is not None:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            # matchFields allows one value only; create_node sets kubernetes.io/hostname = name.
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": list(only_on_nodes)}]}]}}}
    if scheduler_name:
        spec["schedulerName"] = scheduler_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": dict(labels or {})},
            "spec": spec}


def bound_nodes(cp: ControlPlane, namespace: str, names: Sequence[str] | None = None) -> dict[str, str | None]:
    """``{pod: nodeName or None}`` for the pods of ``namespace`` (or just ``names``)."""
    pods = cp.request("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
    out = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods}
    return out if names is None else {n: out.get(n) for n in names}


def wait_bound(cp: ControlPlane, namespace: str, names: Sequence[str], timeout_s: float = 60.0) -> dict[str, str]:
    """Wait until every pod in ``names`` is bound to a node; returns ``{pod: node}``."""
    result: dict[str, str] = {}

    def done() -> bool:
        got = bound_nodes(cp, namespace, names)
        result.clear()
        result.update({k: v for k, v in got.items() if v})
        return len(result) == len(names)

    try:
        _wait(f"pods {list(names)} in {namespace} to be scheduled", done, timeout_s, interval_s=0.2)
    except HarnessError as exc:
        raise HarnessError(f"{exc}; bound so far: {result}; events:\n{pod_events(cp, namespace)}") from None
    return result


def pod_events(cp: ControlPlane, namespace: str) -> str:
    """The namespace's events, one line each (for assertion messages)."""
    items = cp.request("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
    return "\n".join(f"{e['involvedObject'].get('name')}: {e.get('reason')}: {e.get('message')}" for e in items)


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """True when a plain-HTTP GET of ``url`` answers 200 (a health or readiness probe)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextlib.contextmanager
def control_plane(workdir: Path, **kwargs: Any) -> Iterator[ControlPlane]:
    """``with control_plane(tmp) as cp:`` — start, yield, always stop."""
    cp = ControlPlane.start(workdir, **kwargs)
    try:
        yield cp
    finally:
        cp.stop()
