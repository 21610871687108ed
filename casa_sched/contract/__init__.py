"""The planner contract: every type a planner consumes or returns, and nothing that runs.

A planner sees a :class:`~casa_sched.contract.snapshot.ClusterSnapshot`, a
:class:`~casa_sched.contract.forecast.Forecast` and
:class:`~casa_sched.contract.forecast.EpochSignals`, and returns a
:class:`~casa_sched.contract.plan.Plan`; learning policies observe an
:class:`~casa_sched.contract.results.EpochResult`. These types sit below the simulator and the
planners so that the autoscaler, the extender and the planners can share them without importing
the simulator's engine (and so numba). Modules: ``plan``, ``forecast``, ``cluster``, ``results``,
``snapshot``; import each type from its module (this package re-exports nothing).
"""
