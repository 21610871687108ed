"""Workload traces: the Azure Functions 2019 loader, the synthetic default, and the Workload type.

Bottom import layer (docs/architecture.md "Layers"): pure loading and derivation code, no Kubernetes or HTTP.
"""

from casa_sched.traces.azure2019 import (
    HOW_TO_OBTAIN,
    AzureTrace,
    DuplicateFunctionError,
    TraceColumnError,
    TraceError,
    TraceFileMissingError,
    TraceValueError,
    detect_layout,
    load_azure2019,
    load_workload,
)
from casa_sched.traces.synthetic import (
    SyntheticParams,
    WorkloadStatistics,
    synthetic_workload,
    workload_statistics,
)
from casa_sched.traces.workload import (
    DEFAULT_EPOCH_MIN,
    MIN_T_AVE_S,
    EpochArrivals,
    Workload,
    WorkloadError,
)

__all__ = [
    "DEFAULT_EPOCH_MIN",
    "HOW_TO_OBTAIN",
    "MIN_T_AVE_S",
    "AzureTrace",
    "DuplicateFunctionError",
    "EpochArrivals",
    "SyntheticParams",
    "TraceColumnError",
    "TraceError",
    "TraceFileMissingError",
    "TraceValueError",
    "Workload",
    "WorkloadError",
    "WorkloadStatistics",
    "detect_layout",
    "load_azure2019",
    "load_workload",
    "synthetic_workload",
    "workload_statistics",
]
