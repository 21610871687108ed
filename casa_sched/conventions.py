"""Names shared by every component: labels, annotations, the plan store (docs/architecture.md "Kubernetes").

Kept in one pure module so the extender, the autoscaler, the profiler and the manifests agree.
"""

from __future__ import annotations

from collections.abc import Mapping

NAMESPACE = "casa-system"
PLAN_CONFIGMAP_NAME = "casa-plan"
PLAN_CONFIGMAP_KEY = "plan.json"
POWER_MODEL_ANNOTATION = "casa.dev/power-model"
# On a function's workload: which container of the pod is the function's own (the resize target);
# without it, the first container of the pod template.
CONTAINER_ANNOTATION = "casa.dev/container"
# Set by the autoscaler on pods the plan no longer places, so a scale-down removes them first.
POD_DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"

FUNCTION_LABEL = "casa.dev/function"
KNATIVE_SERVICE_LABEL = "serving.knative.dev/service"
OPENFAAS_FUNCTION_LABEL = "faas_function"
# Order matters: an explicit casa label wins over the platform's own label.
FUNCTION_LABELS: tuple[str, ...] = (FUNCTION_LABEL, KNATIVE_SERVICE_LABEL, OPENFAAS_FUNCTION_LABEL)


def function_of(labels: Mapping[str, str] | None) -> str | None:
    """The function a pod belongs to, from its labels, or ``None`` for a pod of no function.

    >>> function_of({"faas_function": "resize", "serving.knative.dev/service": "thumb"})
    'thumb'
    """
    if not labels:
        return None
    for key in FUNCTION_LABELS:
        value = labels.get(key)
        if value:
            return value
    return None

# Node power states (README "Node power management"): written by the autoscaler on the Nodes it
# powers down and up; the value is one of casa_sched.autoscaler.power.PowerState.
POWER_STATE_ANNOTATION = "casa.dev/power-state"
POWER_STATE_SINCE_ANNOTATION = "casa.dev/power-state-since"  # RFC 3339 UTC time of the last change
# The node annotation the default power hook template reads its BMC address from ({bmc}).
BMC_ADDRESS_ANNOTATION = "casa.dev/bmc-address"
# Node annotations of the node autoscalers, for the "cluster-autoscaler" power mode: Cluster
# Autoscaler never scales down a node annotated "true"; Karpenter never consolidates a Node
# annotated "true".
CA_SCALE_DOWN_DISABLED_ANNOTATION = "cluster-autoscaler.kubernetes.io/scale-down-disabled"
KARPENTER_DO_NOT_DISRUPT_ANNOTATION = "karpenter.sh/do-not-disrupt"
# Set by the kubelet on mirror pods of static pods.
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
