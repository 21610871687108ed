"""Realistic kube-scheduler payloads: v1.Pod and v1.Node exactly as the Go client serialises them.

For the extender's tests and ``benchmarks/extender_bench.py`` (which must not import ``tests``:
pyRAPL's optional extra installs a top-level ``tests`` package that shadows the repository's).

Shapes copied from what client-go's JSON encoder emits for objects from the informer cache:
no kind/apiVersion on the Pod (the cache strips TypeMeta), ``creationTimestamp`` as RFC 3339,
``managedFields`` with ``fieldsV1``, quantities as strings, an empty ``status`` map rendered as
``{}``, ``"resources": {}`` on containers without requests, and so on.
"""

from __future__ import annotations

import copy
import json
from typing import Any

POWER_MODEL: dict[str, Any] = {
    "version": 1,
    "degree": 4,
    "unit": "W",
    "variable": "busy_cores",
    "coefficients": {"A": 0.0, "B": 0.0, "C": 0.0, "D": 1.0, "E": 100.0},
    "cores": 64,
    "source": "test-linear",
}


def real_pod(
    name: str = "thumbnail-00001-deployment-7d9f8c6b5-x2x9q",
    uid: str = "5b8c3a2e-0f0e-4c57-9a52-3f7f1d6b9e21",
    labels: dict[str, str] | None = None,
    cpu: str = "2",
    memory: str = "150Mi",
    node_name: str | None = None,
) -> dict[str, Any]:
    """A Knative function pod (user container + queue-proxy), pending, as the scheduler sends it."""
    pod: dict[str, Any] = {
        "metadata": {
            "name": name,
            "generateName": "thumbnail-00001-deployment-7d9f8c6b5-",
            "namespace": "default",
            "uid": uid,
            "resourceVersion": "48213",
            "creationTimestamp": "2025-06-01T10:15:02Z",
            "labels": {
                "app": "thumbnail-00001",
                "pod-template-hash": "7d9f8c6b5",
                "serving.knative.dev/configuration": "thumbnail",
                "serving.knative.dev/revision": "thumbnail-00001",
                "serving.knative.dev/service": "thumbnail",
                **(labels or {}),
            },
            "annotations": {
                "autoscaling.knative.dev/min-scale": "1",
                "serving.knative.dev/creator": "kubernetes-admin",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "thumbnail-00001-deployment-7d9f8c6b5",
                    "uid": "e1e4c1a8-5d41-4b1a-9f7e-0c1f8a9d2b33",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2025-06-01T10:15:02Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {
                            "f:generateName": {},
                            "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}},
                            "f:ownerReferences": {".": {}, 'k:{"uid":"e1e4c1a8-5d41-4b1a-9f7e-0c1f8a9d2b33"}': {}},
                        },
                        "f:spec": {"f:containers": {'k:{"name":"user-container"}': {".": {}, "f:image": {}}}},
                    },
                }
            ],
        },
        "spec": {
            "volumes": [
                {
                    "name": "kube-api-access-8x7vq",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        ],
                        "defaultMode": 420,
                    },
                }
            ],
            "containers": [
                {
                    "name": "user-container",
                    "image": "ghcr.io/example/thumbnail@sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
                    "ports": [{"name": "user-port", "containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": "PORT", "value": "8080"}, {"name": "K_REVISION", "value": "thumbnail-00001"}],
                    "resources": {"limits": {"cpu": cpu, "memory": memory}, "requests": {"cpu": cpu, "memory": memory}},
                    "volumeMounts": [
                        {
                            "name": "kube-api-access-8x7vq",
                            "readOnly": True,
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                        }
                    ],
                    "lifecycle": {"preStop": {"httpGet": {"path": "/wait-for-drain", "port": 8022, "scheme": "HTTP"}}},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "imagePullPolicy": "IfNotPresent",
                    "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
                },
                {
                    "name": "queue-proxy",
                    "image": "gcr.io/knative-releases/knative.dev/serving/cmd/queue@sha256:1234",
                    "resources": {"requests": {"cpu": "25m", "memory": "50Mi"}},
                    "readinessProbe": {
                        "httpGet": {"path": "/", "port": 8012, "scheme": "HTTP"},
                        "timeoutSeconds": 1,
                        "periodSeconds": 10,
                        "successThreshold": 1,
                        "failureThreshold": 3,
                    },
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                    "securityContext": {"capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True},
                },
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 300,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "priority": 0,
            "enableServiceLinks": False,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }
    if node_name is not None:
        pod["spec"]["nodeName"] = node_name
        pod["status"] = {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": "2025-06-01T10:15:09Z"}
            ],
            "hostIP": "10.0.0.11",
            "podIP": "10.244.1.17",
            "startTime": "2025-06-01T10:15:03Z",
            "qosClass": "Burstable",
        }
    return pod


def plain_pod(
    name: str = "nginx-5869d7778c-abcde", uid: str = "0c2d1e7a-1111-4222-8333-944455556666"
) -> dict[str, Any]:
    """A pod of no function (nginx Deployment)."""
    pod = real_pod(name=name, uid=uid)
    pod["metadata"]["labels"] = {"app": "nginx", "pod-template-hash": "5869d7778c"}
    return pod


def real_node(
    name: str, cpu: str = "64", memory: str = "263975632Ki", power_model: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A v1.Node as the scheduler's NodeList carries it."""
    annotations = {
        "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    }
    if power_model is not None:
        annotations["casa.dev/power-model"] = json.dumps(power_model)
    return {
        "metadata": {
            "name": name,
            "uid": f"9a1b{abs(hash(name)) % 10**8:08d}-0000-4000-8000-000000000000",
            "resourceVersion": "47110",
            "creationTimestamp": "2025-05-30T08:00:00Z",
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
            },
            "annotations": annotations,
            "managedFields": [
                {
                    "manager": "kubelet",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2025-06-01T10:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:status": {"f:allocatable": {"f:cpu": {}, "f:memory": {}}, "f:conditions": {}}},
                    "subresource": "status",
                }
            ],
        },
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]},
        "status": {
            "capacity": {
                "cpu": "64",
                "ephemeral-storage": "490691512Ki",
                "hugepages-1Gi": "0",
                "memory": "264078032Ki",
                "pods": "110",
            },
            "allocatable": {
                "cpu": cpu,
                "ephemeral-storage": "452220352498",
                "hugepages-1Gi": "0",
                "memory": memory,
                "pods": "110",
            },
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "lastHeartbeatTime": "2025-06-01T10:14:00Z",
                    "lastTransitionTime": "2025-05-30T08:01:00Z",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.11"}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": "0123456789abcdef",
                "systemUUID": "01234567-89ab-cdef-0123-456789abcdef",
                "bootID": "fedcba98-7654-3210-fedc-ba9876543210",
                "kernelVersion": "6.8.0-45-generic",
                "osImage": "Ubuntu 24.04.1 LTS",
                "containerRuntimeVersion": "containerd://1.7.22",
                "kubeletVersion": "v1.33.1",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": [{"names": ["registry.k8s.io/pause:3.10"], "sizeBytes": 320368}],
        },
    }


def args_names(pod: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """ExtenderArgs with nodeCacheCapable: true."""
    return {"Pod": pod, "Nodes": None, "NodeNames": names}


def args_nodes(pod: dict[str, Any], nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """ExtenderArgs with nodeCacheCapable: false (a NodeList; TypeMeta empty, ListMeta {})."""
    return {"Pod": pod, "Nodes": {"metadata": {}, "items": copy.deepcopy(nodes)}, "NodeNames": None}


def plan_doc(
    containers: dict[str, list[str]], *, epoch_start: str = "2030-01-01T00:00:00+00:00", ci: float | None = 400.0
) -> str:
    return json.dumps(
        {
            "version": 1,
            "epoch": 7,
            "epoch_start": epoch_start,
            "epoch_length_s": 900.0,
            "inputs": {"policy": "casa", "ci_g_per_kwh": ci},
            "containers": {f: [{"node": n, "size": 1} for n in nodes] for f, nodes in containers.items()},
        }
    )
