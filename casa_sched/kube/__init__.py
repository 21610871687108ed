"""Thin Kubernetes adapters shared by the extender and the autoscaler (outer layer, docs/architecture.md "Layers").

- :mod:`casa_sched.kube.objects`: pure parsing of the few fields casa-sched reads from Pod,
  Node and ConfigMap JSON (as the API server and kube-scheduler serialise them).
- :mod:`casa_sched.kube.reflector`: list-then-watch loop with resourceVersion bookkeeping and
  re-list on 410 Gone, in a background thread, against any list/watch callables.
- :mod:`casa_sched.kube.client`: those callables for the real API (``kubernetes`` client, raw JSON).
- :mod:`casa_sched.kube.plan_source`: the current Plan from the ConfigMap or a file.
"""

from casa_sched.kube.objects import NodeInfo, ObjectError, PodInfo, parse_node, parse_pod
from casa_sched.kube.quantity import QuantityError, parse_cpu_cores, parse_memory_bytes

__all__ = [
    "NodeInfo",
    "ObjectError",
    "PodInfo",
    "QuantityError",
    "parse_cpu_cores",
    "parse_memory_bytes",
    "parse_node",
    "parse_pod",
]
