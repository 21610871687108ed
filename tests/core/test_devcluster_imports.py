"""casa_sched.devcluster loads without the kubernetes client (it is needed only for api_client())."""

from __future__ import annotations

import subprocess
import sys


def test_devcluster_imports_no_kubernetes_client() -> None:
    code = ("import sys, casa_sched.devcluster.controlplane, casa_sched.devcluster.kwok, "
            "casa_sched.devcluster.stub_extender; print(sorted(m for m in sys.modules if m.startswith('kubernetes')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_stage_files_ship_with_the_package() -> None:
    from casa_sched.devcluster.kwok import stage_files

    names = [f.name for f in stage_files()]
    assert names == ["casa-pod-resize.yaml", "kwok-v0.8.0-fast.yaml"]
