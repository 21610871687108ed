"""KWOK (sigs.k8s.io/kwok) on the local control plane: fake kubelets whose pods "run".

:meth:`ControlPlane.start_kwok <casa_sched.devcluster.controlplane.ControlPlane.start_kwok>`
runs one ``kwok`` process against the plane's apiserver. It manages only Nodes labelled
``casa.dev/kwok-node=true`` (``--manage-all-nodes=false --manage-nodes-with-label-selector``),
so plain API Nodes made by ``create_node`` keep the behaviour they had (bound pods stay
``Pending``). On managed nodes, driven by the Stages in ``stages/``:

- the Node gets Ready/MemoryPressure/... conditions, addresses and nodeInfo, and its
  conditions' heartbeat is renewed every 20-45 s (KWOK's ``node-initialize``/``node-heartbeat``);
- a bound Pod becomes ``Running`` with Ready conditions, a pod IP and container statuses
  (``pod-ready``); a deleted Pod is removed (``pod-delete``); a Job's pod succeeds
  (``pod-complete``);
- in-place resize (``casa-pod-resize.yaml``): each container's spec resources are reported as its
  configured size in ``status.containerStatuses[].resources`` and ``allocatedResources`` and
  ``status.observedGeneration`` follows ``metadata.generation``, so a ``pods/resize`` patch is
  accepted by the API server and completes at once; a pod annotated
  ``casa.dev/test-resize: deferred`` or ``infeasible`` gets the ``PodResizePending`` condition
  with that reason instead (what a kubelet reports when the new size does not fit the node now,
  or can never fit it).

**What the stages cannot model.** There is no kubelet, container runtime or cgroup: nothing
runs, nothing is measured, a "resized" container's limits constrain nothing. No admission of
the new size against the node's allocatable happens: every resize of an unannotated pod
succeeds at once, even one that exceeds the node (a kubelet would report ``Infeasible`` or
``Deferred``); Deferred and Infeasible appear only where a test asks for them by annotation,
and a Deferred resize is never retried when room frees up (remove the annotation to let it
complete). ``PodResizeInProgress`` is never reported (no actuation time, no ``Error``
reason), ``resizePolicy`` (``RestartContainer``) restarts nothing and ``restartCount`` stays
0, memory-limit decreases are not checked against usage, and pod-level resources
(``spec.resources``) are not reported. Resource usage metrics (cAdvisor, metrics-server) do
not exist.

**Node lifecycle.** The plane keeps ``TaintNodesByCondition`` and the controller manager's
``node-lifecycle-controller``/``taint-eviction-controller`` off even with KWOK: plain API nodes
in the same plane have no heartbeat and would be tainted ``not-ready``/``unreachable`` and
their pods evicted. KWOK nodes heartbeat anyway, so they look like real Ready nodes to anything
that reads their conditions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from casa_sched.devcluster.controlplane import REPO_ROOT, HarnessError

DEFAULT_KWOK_VERSION = "v0.8.0"
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-kwok.sh"
STAGES_DIR = Path(__file__).resolve().parent / "stages"
KWOK_NODE_LABEL = "casa.dev/kwok-node"
TEST_RESIZE_ANNOTATION = "casa.dev/test-resize"  # "deferred" | "infeasible": see the module docstring
POD_CIDR = "10.244.0.0/16"


def cache_kwok_path(version: str | None = None) -> Path:
    """Where ``hack/build-kwok.sh`` caches the ``kwok`` binary of ``version``."""
    root = os.environ.get("CASA_KWOK_CACHE") or str(Path.home() / ".cache" / "casa-sched" / "kwok")
    return Path(root) / (version or os.environ.get("CASA_KWOK_VERSION") or DEFAULT_KWOK_VERSION) / "bin" / "kwok"


def find_kwok(*, build: bool = True) -> Path:
    """The ``kwok`` executable: ``CASA_KWOK_BIN``, else ``$KUBEBUILDER_ASSETS/kwok``, else the cache.

    With ``build`` a cold cache is filled by ``hack/build-kwok.sh`` (a ``go install`` from the
    module proxy; a few minutes on 2 cores).
    """
    explicit = os.environ.get("CASA_KWOK_BIN")
    if explicit:
        if os.access(explicit, os.X_OK) and Path(explicit).is_file():
            return Path(explicit)
        raise HarnessError(f"CASA_KWOK_BIN={explicit!r} is not an executable file")
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and os.access(Path(assets) / "kwok", os.X_OK):
        return Path(assets) / "kwok"
    cached = cache_kwok_path()
    if os.access(cached, os.X_OK) and (cached.parent / ".complete").exists():
        return cached
    if not build:
        raise HarnessError(f"kwok not found in CASA_KWOK_BIN, KUBEBUILDER_ASSETS nor {cached}; "
                           f"run `make kwok-bin` (or {BUILD_SCRIPT})")
    if shutil.which("go") is None:
        raise HarnessError(f"kwok missing in {cached} and no Go toolchain to build it")
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HarnessError(f"{BUILD_SCRIPT} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    built = Path(result.stdout.strip().splitlines()[-1])
    if not os.access(built, os.X_OK):
        raise HarnessError(f"{BUILD_SCRIPT} reported {built} but it is not executable")
    return built


def stage_files() -> list[Path]:
    """The Stage files the harness gives KWOK: every ``stages/*.yaml`` (KWOK's stock fast stages
    and casa's resize stages). Their pod selectors are disjoint (phase Pending vs Running,
    deleting or not, annotated or not), so their order does not matter — except that a Job's
    Running pod matches both ``pod-complete`` and ``casa-pod-resize-apply``, and KWOK may
    complete it before reporting its size."""
    files = sorted(STAGES_DIR.glob("*.yaml"))
    if not files:
        raise HarnessError(f"no KWOK stage files in {STAGES_DIR}")
    return files


def write_kwok_config(path: Path, extra_stages: tuple[Path, ...] = ()) -> Path:
    """One multi-document YAML of every Stage (``kwok --config`` reads one file per flag)."""
    docs = [f.read_text().strip() for f in (*stage_files(), *extra_stages)]
    path.write_text("\n---\n".join(docs) + "\n")
    return path
