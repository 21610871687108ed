"""``casa autoscaler``: the live epoch loop (snapshot, forecast, plan, store, apply, resize).

Outer layer: the only package besides the extender that talks to the Kubernetes API, platform
gateways and Prometheus. It reuses the planners, the estimator and the models unchanged.
"""
