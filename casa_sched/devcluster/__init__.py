"""A local Kubernetes cluster for development, tests and benchmarks: a real control plane on loopback.

:mod:`~casa_sched.devcluster.controlplane` runs etcd, kube-apiserver, kube-controller-manager and
kube-scheduler as child processes; :mod:`~casa_sched.devcluster.kwok` adds KWOK nodes;
:mod:`~casa_sched.devcluster.prometheus` a real Prometheus; :mod:`~casa_sched.devcluster.cluster`
is ``casa dev-cluster up|down|status`` (all of them detached, with the real extender);
:mod:`~casa_sched.devcluster.stub_extender` is a scriptable scheduler extender and
:mod:`~casa_sched.devcluster.payloads` realistic scheduler payloads. Nothing here imports the
``kubernetes`` client at module import.
"""
