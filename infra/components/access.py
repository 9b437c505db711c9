"""Who may use the cluster's Kubernetes API (Entra ID with Azure RBAC, no local accounts).

Built-in role definitions (Azure built-in roles, Containers; AKS concepts-cluster-authorization.md):
- RBAC Cluster Admin: data actions `Microsoft.ContainerService/managedClusters/*`, so namespaces and
  custom resources (KAITO Workspaces) too; RBAC Writer grants only `namespaces/read` and no custom
  resources, so it cannot deploy this repo's workloads. It also carries `listClusterUserCredential`.
- Cluster User Role: `listClusterUserCredential`, which the exec kubeconfig comes from.
- RBAC Reader: read-only view of most objects, no Secrets.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization

from infra.components.registry import role_definition_id

RBAC_CLUSTER_ADMIN_ROLE = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
CLUSTER_USER_ROLE = "4abbcc35-e782-43d8-92c5-2d3f1bd2253f"
RBAC_READER_ROLE = "7f6c6a51-bcf8-42ba-9220-52d62157d7db"


@dataclass
class ClusterAccessArgs:
    cluster_id: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    deployer_object_id: pulumi.Input[str]  # whoever runs `pulumi up` (the deploy workflow's identity)
    preview_principal_id: str  # "" when the stack has no preview identity


class ClusterAccess(pulumi.ComponentResource):
    def __init__(self, name: str, args: ClusterAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kaito-gitops:infra:ClusterAccess", name, None, opts)
        self.deployer = authorization.RoleAssignment(
            f"{name}-deployer-cluster-admin", principal_id=args.deployer_object_id,
            role_definition_id=role_definition_id(args.subscription_id, RBAC_CLUSTER_ADMIN_ROLE),
            scope=args.cluster_id, opts=pulumi.ResourceOptions(parent=self))
        self.preview = [
            authorization.RoleAssignment(
                f"{name}-preview-{label}", principal_id=args.preview_principal_id,
                principal_type="ServicePrincipal",
                role_definition_id=role_definition_id(args.subscription_id, role),
                scope=args.cluster_id, opts=pulumi.ResourceOptions(parent=self))
            for label, role in (("cluster-user", CLUSTER_USER_ROLE), ("rbac-reader", RBAC_READER_ROLE))
        ] if args.preview_principal_id else []
        self.register_outputs({})
