"""The Pulumi program: one environment (stack) of AKS + KAITO + GPU pools + ACR + workloads."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import authorization, resources

from infra.components.access import ClusterAccess, ClusterAccessArgs
from infra.components.cluster import Cluster, ClusterArgs
from infra.components.gpu_device_plugin import GpuDevicePlugin, GpuDevicePluginArgs
from infra.components.gpu_pool import GpuPool, GpuPoolArgs
from infra.components.gpu_provisioner import GpuProvisionerIdentity, GpuProvisionerIdentityArgs
from infra.components.identity import ControlPlaneIdentity, ControlPlaneIdentityArgs
from infra.components.network import Network, NetworkArgs
from infra.components.registry import Registry, RegistryArgs
from infra.components.workloads import Workloads, WorkloadsArgs
from infra.config import StackConfig
from infra.model import Environment
from infra.render import render_environment


def authorized_ip_ranges(cfg: StackConfig, net: Network) -> pulumi.Input[list[str]]:
    """Who may reach a public API server: the config's CIDRs and the deploy runner's NAT gateway IP."""
    ranges = list(cfg.api_server_authorized_ip_ranges)
    if cfg.private_cluster or net.runner_egress_ip is None:
        return ranges
    return net.runner_egress_ip.ip_address.apply(lambda ip: [*ranges, _host_range(ip)])


def _host_range(ip: str | None) -> str:
    # A Standard static IP has its address once created; without one, an empty list would admit everyone.
    if not ip:
        raise ValueError("the deploy runner's egress IP has no address; refusing to leave the API server open")
    return f"{ip}/32"


def build(cfg: StackConfig, env: Environment) -> None:
    prefix = f"kaito-{cfg.stack}"
    group = resources.ResourceGroup(f"{prefix}-rg", location=cfg.location,
                                    opts=pulumi.ResourceOptions(protect=cfg.protect))
    client = authorization.get_client_config_output()
    net = Network(f"{prefix}-net", NetworkArgs(group.name, cfg.location, cfg.vnet_cidr, cfg.node_subnet_cidr,
                                               cfg.api_server_subnet_cidr, cfg.runner_subnet_cidr))
    control_plane = ControlPlaneIdentity(f"{prefix}-control-plane", ControlPlaneIdentityArgs(
        group.name, cfg.location, client.subscription_id,
        {"nodes": net.node_subnet.id, "apiserver": net.api_server_subnet.id}))
    aks = Cluster(f"{prefix}-aks", ClusterArgs(cfg, group.name, net.node_subnet.id, net.api_server_subnet.id,
                                               control_plane.identity.id, authorized_ip_ranges(cfg, net),
                                               control_plane.network_contributor))
    access = ClusterAccess(f"{prefix}-access", ClusterAccessArgs(
        aks.cluster.id, client.subscription_id, client.object_id, cfg.preview_principal_id))
    pools = [
        GpuPool(f"{prefix}-{pool.name}", GpuPoolArgs(pool, group.name, aks.cluster.name, net.node_subnet.id,
                                                     cfg.kubernetes_version, cfg.upgrade_channel))
        for pool in cfg.gpu_pools
    ]
    acr = Registry(f"{prefix}-acr", RegistryArgs(cfg.registry_name, cfg.registry_sku, cfg.location, group.name,
                                                 aks.kubelet_object_id, client.subscription_id, cfg.protect))
    if cfg.legacy_gpu_provisioner:
        GpuProvisionerIdentity(f"{prefix}-gpu-provisioner", GpuProvisionerIdentityArgs(
            group.name, group.id, cfg.location, aks.oidc_issuer_url, client.subscription_id))
    # Kubernetes objects need the deployer's data-plane role; Jobs need the GPU pools and their device plugin.
    on_cluster = [aks.cluster, access.deployer]
    plugin = GpuDevicePlugin(f"{prefix}-nvidia-device-plugin", GpuDevicePluginArgs(aks.kubeconfig, on_cluster))
    Workloads(f"{prefix}-workloads", WorkloadsArgs(cfg.stack, render_environment(env), aks.kubeconfig,
                                                   depends_on=[*on_cluster, *[p.agent_pool for p in pools],
                                                               plugin.daemon_set]))
    pulumi.export("resource_group_name", group.name)  # scripts/bootstrap.sh scopes the deploy identity to it
    pulumi.export("cluster_name", aks.cluster.name)
    pulumi.export("oidc_issuer_url", aks.oidc_issuer_url)
    pulumi.export("acr_login_server", acr.registry.login_server)
    pulumi.export("kubeconfig", aks.kubeconfig)
    if net.runner_subnet is not None and net.runner_egress_ip is not None:
        pulumi.export("runner_subnet_id", net.runner_subnet.id)
        pulumi.export("runner_egress_ip", net.runner_egress_ip.ip_address)
