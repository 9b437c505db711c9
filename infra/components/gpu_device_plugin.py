"""The NVIDIA device plugin on every GPU pool, Spot ones included.

`gpuProfile.driver: Install` gives the nodes the driver only; without the device plugin no node
advertises `nvidia.com/gpu` and nothing that requests a GPU schedules (AKS use-nvidia-gpu.md,
"Self-managed GPU setup"). AKS's managed GPU stack (`gpuProfile.nvidia.managementMode`) is in
preview, does not support the cluster autoscaler these pools scale from zero with, and is not in
the pinned azure-native SDK (aks-managed-gpu-nodes.md). So the program runs the DaemonSet AKS
documents, tolerating the GPU taint and the taint AKS puts on Spot nodes (spot-node-pool.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.components.gpu_pool import ACCELERATOR_LABEL
from infra.render import GPU_TAINT

IMAGE = "nvcr.io/nvidia/k8s-device-plugin:v0.18.0"  # the version AKS use-nvidia-gpu.md deploys
NAMESPACE = "kube-system"
SPOT_TAINT_KEY = "kubernetes.azure.com/scalesetpriority"  # value spot, effect NoSchedule
APP_LABEL = {"name": "nvidia-device-plugin-ds"}


@dataclass
class GpuDevicePluginArgs:
    kubeconfig: pulumi.Input[str]
    depends_on: list[pulumi.Resource]


class GpuDevicePlugin(pulumi.ComponentResource):
    def __init__(self, name: str, args: GpuDevicePluginArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kaito-gitops:infra:GpuDevicePlugin", name, None, opts)
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=args.kubeconfig, enable_server_side_apply=True,
                                     opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on))
        self.daemon_set = k8s.apps.v1.DaemonSet(
            name,
            metadata={"name": "nvidia-device-plugin-daemonset", "namespace": NAMESPACE},
            spec={
                "selector": {"match_labels": APP_LABEL},
                "update_strategy": {"type": "RollingUpdate"},
                "template": {
                    "metadata": {"labels": APP_LABEL},
                    "spec": {
                        "node_selector": ACCELERATOR_LABEL,
                        "tolerations": [
                            {"key": GPU_TAINT["key"], "operator": GPU_TAINT["operator"], "value": GPU_TAINT["value"],
                             "effect": GPU_TAINT["effect"]},
                            {"key": SPOT_TAINT_KEY, "operator": "Equal", "value": "spot", "effect": "NoSchedule"},
                        ],
                        "priority_class_name": "system-node-critical",
                        "containers": [{
                            "name": "nvidia-device-plugin-ctr",
                            "image": IMAGE,
                            "env": [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
                            "security_context": {"allow_privilege_escalation": False,
                                                 "capabilities": {"drop": ["ALL"]}},
                            "volume_mounts": [{"name": "device-plugin",
                                               "mount_path": "/var/lib/kubelet/device-plugins"}],
                        }],
                        "volumes": [{"name": "device-plugin",
                                     "host_path": {"path": "/var/lib/kubelet/device-plugins"}}],
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=args.depends_on))
        self.register_outputs({"daemon_set": self.daemon_set.metadata.apply(lambda m: m.name if m else None)})
