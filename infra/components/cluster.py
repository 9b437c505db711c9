"""The AKS cluster with the KAITO add-on, and its maintenance windows."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import containerservice

from infra import catalog
from infra.config import StackConfig

# The kubeconfig format whose user runs kubelogin (listClusterUserCredential's `format`, azure-native SDK docs).
KUBECONFIG_FORMAT = "exec"
# Channels that move the Kubernetes version (AKS auto-upgrade-cluster.md); node-image only moves node images.
VERSION_CHANNELS = ("patch", "stable", "rapid")


@dataclass
class ClusterArgs:
    config: StackConfig
    resource_group_name: pulumi.Input[str]
    node_subnet_id: pulumi.Input[str]
    api_server_subnet_id: pulumi.Input[str]
    identity_id: pulumi.Input[str]
    # The config's ranges plus the deploy runner's egress; empty for a private cluster.
    authorized_ip_ranges: pulumi.Input[Sequence[str]]
    # The identity's Network Contributor assignments: AKS needs them while it creates the cluster.
    identity_ready: Sequence[pulumi.Resource]


def os_disk_type(vm_size: str, size_gib: int) -> str:
    """Ephemeral only where the size's local disk holds an OS disk of that size, else Managed.

    AKS rejects an ephemeral OS disk larger than the cache (or, without a cache, the temp disk),
    and without an explicit size picks one itself (AKS concepts-storage.md).
    """
    sku = catalog.sku(vm_size)
    return "Ephemeral" if sku and sku.ephemeral_os_disk_fits(size_gib) else "Managed"


def version_drift(upgrade_channel: str, field: str) -> list[str]:
    """With an auto-upgrade channel AKS moves the version; Pulumi must not undo it on the next up."""
    return [field] if upgrade_channel in VERSION_CHANNELS else []


class Cluster(pulumi.ComponentResource):
    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kaito-gitops:infra:Cluster", name, None, opts)
        cfg = args.config
        self.cluster = containerservice.ManagedCluster(
            name,
            resource_group_name=args.resource_group_name,
            location=cfg.location,
            dns_prefix=name,
            kubernetes_version=cfg.kubernetes_version,
            identity={"type": containerservice.ResourceIdentityType.USER_ASSIGNED,
                      "user_assigned_identities": [args.identity_id]},
            sku={"name": "Base", "tier": "Standard" if cfg.protect else "Free"},
            # No taint: KAITO's controller and webhook carry no CriticalAddonsOnly toleration (KAITO chart
            # values.yaml `tolerations: []`) and every other pool is GPU-tainted, so they run here.
            agent_pool_profiles=[{
                "name": "system",
                "mode": "System",
                "vm_size": cfg.system_vm_size,
                "count": cfg.system_node_count,
                "os_type": "Linux",
                "os_disk_type": os_disk_type(cfg.system_vm_size, cfg.system_os_disk_size_gb),
                "os_disk_size_gb": cfg.system_os_disk_size_gb,
                "orchestrator_version": cfg.kubernetes_version,
                "vnet_subnet_id": args.node_subnet_id,
                "enable_node_public_ip": False,
            }],
            ai_toolchain_operator_profile={"enabled": True},
            oidc_issuer_profile={"enabled": True},
            security_profile={"workload_identity": {"enabled": True}},
            aad_profile={"managed": True, "enable_azure_rbac": True,
                         "admin_group_object_ids": list(cfg.admin_group_object_ids)},
            disable_local_accounts=True,
            enable_rbac=True,
            network_profile={
                "network_plugin": "azure",
                "network_plugin_mode": "overlay",
                "network_policy": "cilium",
                "network_dataplane": "cilium",
                "pod_cidr": cfg.pod_cidr,
                "load_balancer_sku": "standard",
            },
            api_server_access_profile={
                "enable_vnet_integration": True,
                "subnet_id": args.api_server_subnet_id,
                "enable_private_cluster": cfg.private_cluster,
                "authorized_ip_ranges": args.authorized_ip_ranges,
            },
            auto_upgrade_profile={"upgrade_channel": cfg.upgrade_channel,
                                  "node_os_upgrade_channel": cfg.node_os_upgrade_channel},
            addon_profiles={"azureKeyvaultSecretsProvider": {"enabled": True, "config": {"enableSecretRotation": "true"}}},
            opts=pulumi.ResourceOptions(
                parent=self, protect=cfg.protect, depends_on=list(args.identity_ready),
                ignore_changes=version_drift(cfg.upgrade_channel, "kubernetesVersion")
                + version_drift(cfg.upgrade_channel, "agentPoolProfiles[*].orchestratorVersion")))
        self.maintenance = [
            containerservice.MaintenanceConfiguration(
                f"{name}-{config_name}", resource_group_name=args.resource_group_name,
                resource_name_=self.cluster.name, config_name=config_name,
                maintenance_window={
                    "schedule": {"weekly": {"day_of_week": cfg.maintenance_day, "interval_weeks": 1}},
                    "duration_hours": cfg.maintenance_duration_hours,
                    "start_time": f"{cfg.maintenance_start_hour:02d}:00",
                    "utc_offset": "+00:00",
                },
                opts=pulumi.ResourceOptions(parent=self))
            for config_name in ("aksManagedAutoUpgradeSchedule", "aksManagedNodeOSUpgradeSchedule")
        ]
        credentials = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=args.resource_group_name, resource_name=self.cluster.name, format=KUBECONFIG_FORMAT)
        # Entra ID only: this kubeconfig runs kubelogin, which must be on PATH (docs/infrastructure.md).
        self.kubeconfig = pulumi.Output.secret(credentials.kubeconfigs.apply(
            lambda configs: base64.b64decode(configs[0].value).decode() if configs else ""))
        self.oidc_issuer_url = self.cluster.oidc_issuer_profile.apply(lambda p: (p.issuer_url if p else None) or "")
        self.kubelet_object_id = self.cluster.identity_profile.apply(
            lambda p: (p["kubeletidentity"].object_id if p and "kubeletidentity" in p else None) or "")
        self.register_outputs({"name": self.cluster.name, "oidc_issuer_url": self.oidc_issuer_url})
