"""Emulated function traffic for a real (or KWOK) Kubernetes cluster: ``casa emulate``.

A trace is replayed against the function pods that exist, through the simulator's own models
and kernel (:mod:`.core`), and exported in the formats the forecast and the accounting read
(:mod:`.exposition`); :mod:`.process` watches the pods and keeps time on the shared clock
(:mod:`casa_sched.clock`). A layer above the programs: it reuses the experiments' scenarios
(the same workload and arrivals as ``casa simulate``) and the autoscaler's pod parsing.
"""
