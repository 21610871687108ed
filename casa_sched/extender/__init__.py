"""The kube-scheduler extender: filter and score nodes so function pods follow the plan.

Outer layer: may use FastAPI, uvicorn and the Kubernetes client. Modules:
:mod:`~casa_sched.extender.wire` (protocol, limits on hostile input),
:mod:`~casa_sched.extender.memo` (the byte-bounded cache), :mod:`~casa_sched.extender.state` (live view and
assumed placements), :mod:`~casa_sched.extender.decide` (the policy), :mod:`~casa_sched.extender.app`
(HTTP), :mod:`~casa_sched.extender.runtime` (wiring); the ``casa extender`` command is
:mod:`casa_sched.cli.extender_cmd`.
"""
