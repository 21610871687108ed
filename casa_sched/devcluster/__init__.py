"""A local Kubernetes cluster for development and tests: a real control plane on loopback.

:mod:`casa_sched.devcluster.controlplane` runs etcd, kube-apiserver, kube-controller-manager and
kube-scheduler as child processes; :mod:`casa_sched.devcluster.stub_extender` is a scriptable
scheduler extender. Nothing here imports the ``kubernetes`` client at module import.
"""
