"""The Pulumi program: one environment (stack) of AKS + KAITO + GPU pools + ACR + workloads."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import authorization, resources

from infra.components.cluster import Cluster, ClusterArgs
from infra.components.gpu_pool import GpuPool, GpuPoolArgs
from infra.components.gpu_provisioner import GpuProvisionerIdentity, GpuProvisionerIdentityArgs
from infra.components.network import Network, NetworkArgs
from infra.components.registry import Registry, RegistryArgs
from infra.components.workloads import Workloads, WorkloadsArgs
from infra.config import StackConfig
from infra.model import Environment
from infra.render import render_environment


def build(cfg: StackConfig, env: Environment) -> None:
    prefix = f"kaito-{cfg.stack}"
    group = resources.ResourceGroup(f"{prefix}-rg", location=cfg.location,
                                    opts=pulumi.ResourceOptions(protect=cfg.protect))
    client = authorization.get_client_config_output()
    net = Network(f"{prefix}-net", NetworkArgs(group.name, cfg.location, cfg.vnet_cidr, cfg.node_subnet_cidr))
    aks = Cluster(f"{prefix}-aks", ClusterArgs(cfg, group.name, net.node_subnet.id))
    pools = [
        GpuPool(f"{prefix}-{pool.name}", GpuPoolArgs(pool, group.name, aks.cluster.name, net.node_subnet.id,
                                                     cfg.kubernetes_version))
        for pool in cfg.gpu_pools
    ]
    acr = Registry(f"{prefix}-acr", RegistryArgs(cfg.registry_name, cfg.registry_sku, cfg.location, group.name,
                                                 aks.kubelet_object_id, client.subscription_id, cfg.protect))
    if cfg.legacy_gpu_provisioner:
        GpuProvisionerIdentity(f"{prefix}-gpu-provisioner", GpuProvisionerIdentityArgs(
            group.name, group.id, cfg.location, aks.oidc_issuer_url, client.subscription_id))
    # The add-on installs KAITO's CRD once the cluster exists; Jobs need the GPU pools.
    Workloads(f"{prefix}-workloads", WorkloadsArgs(cfg.stack, render_environment(env), aks.kubeconfig,
                                                   depends_on=[aks.cluster, *[p.agent_pool for p in pools]]))
    pulumi.export("cluster_name", aks.cluster.name)
    pulumi.export("oidc_issuer_url", aks.oidc_issuer_url)
    pulumi.export("acr_login_server", acr.registry.login_server)
    pulumi.export("kubeconfig", aks.kubeconfig)
