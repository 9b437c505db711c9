"""A GPU node pool that scales from zero, tainted so only GPU workloads land on it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import containerservice

from infra.components.cluster import os_disk_type, version_drift
from infra.config import GpuPoolConfig
from infra.render import GPU_TAINT, POOL_LABEL

TAINT = f"{GPU_TAINT['key']}={GPU_TAINT['value']}:{GPU_TAINT['effect']}"  # KAITO's own GPU taint
# Every GPU pool carries this label; the NVIDIA device plugin DaemonSet selects on it.
ACCELERATOR_LABEL = {"accelerator": "nvidia"}


@dataclass
class GpuPoolArgs:
    pool: GpuPoolConfig
    resource_group_name: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    node_subnet_id: pulumi.Input[str]
    kubernetes_version: str
    upgrade_channel: str


class GpuPool(pulumi.ComponentResource):
    def __init__(self, name: str, args: GpuPoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kaito-gitops:infra:GpuPool", name, None, opts)
        pool = args.pool
        self.agent_pool = containerservice.AgentPool(
            name,
            agent_pool_name=pool.name,
            resource_group_name=args.resource_group_name,
            resource_name_=args.cluster_name,
            mode="User",
            os_type="Linux",
            vm_size=pool.vm_size,
            os_disk_type=os_disk_type(pool.vm_size, pool.os_disk_size_gb),
            os_disk_size_gb=pool.os_disk_size_gb,
            orchestrator_version=args.kubernetes_version,
            enable_auto_scaling=True,
            min_count=pool.min_count,
            max_count=pool.max_count,
            count=pool.min_count,
            node_taints=[TAINT],
            node_labels={POOL_LABEL: pool.name, **ACCELERATOR_LABEL},
            # The driver only: the device plugin comes from the GpuDevicePlugin component.
            gpu_profile={"driver": "Install"},
            enable_node_public_ip=False,
            vnet_subnet_id=args.node_subnet_id,
            scale_set_priority="Spot" if pool.spot else "Regular",
            scale_set_eviction_policy="Delete" if pool.spot else None,
            spot_max_price=pool.spot_max_price if pool.spot else None,
            # The autoscaler owns the node count once the pool exists; the upgrade channel owns the version.
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=["count", *version_drift(args.upgrade_channel, "orchestratorVersion")]))
        self.register_outputs({"name": self.agent_pool.name})
