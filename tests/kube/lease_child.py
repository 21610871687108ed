"""A lease candidate in its own process, for tests that SIGKILL or SIGTERM a leader.

``python tests/kube/lease_child.py KUBECONFIG IDENTITY NAME NAMESPACE DURATION_S RENEW_S RETRY_S``
prints ``leader`` once it leads, ``released`` after a SIGTERM released the lease, and runs until
killed. SIGTERM releases the lease through ``release_on_signals``.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from casa_sched.autoscaler.lease import LeaderElector, release_on_signals
from casa_sched.kube.client import load_api_client


def main(argv: list[str]) -> int:
    kubeconfig, identity, name, namespace, duration, renew, retry = argv
    api = load_api_client(Path(kubeconfig))
    led = threading.Event()
    elector = LeaderElector(api, identity, name=name, namespace=namespace, lease_duration_s=int(duration),
                            renew_deadline_s=float(renew), retry_period_s=float(retry),
                            on_started_leading=led.set)
    release_on_signals(elector)
    elector.start()
    try:
        led.wait()
        print("leader", flush=True)
        threading.Event().wait()
    except SystemExit:
        print("released", flush=True)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
