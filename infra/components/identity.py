"""The cluster's control-plane identity, with Network Contributor on the subnets it manages.

For a cluster in its own VNet, Microsoft's guidance is a user-assigned identity holding Network
Contributor on the node subnet (and, with API Server VNet Integration, on the API server subnet)
before the cluster is created: a system-assigned identity only exists once the cluster does, so
its first provisioning would fail or race the role assignment (AKS api-server-vnet-integration.md,
"Create a managed identity and give it permissions on the virtual network").
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, managedidentity

from infra.components.registry import role_definition_id

NETWORK_CONTRIBUTOR_ROLE = "4d97b98b-1d4f-4787-a291-c67834d212e7"


@dataclass
class ControlPlaneIdentityArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    subscription_id: pulumi.Input[str]
    subnet_ids: dict[str, pulumi.Input[str]]  # short name -> subnet id


class ControlPlaneIdentity(pulumi.ComponentResource):
    def __init__(self, name: str, args: ControlPlaneIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kaito-gitops:infra:ControlPlaneIdentity", name, None, opts)
        self.identity = managedidentity.UserAssignedIdentity(
            name, resource_group_name=args.resource_group_name, location=args.location,
            opts=pulumi.ResourceOptions(parent=self))
        self.network_contributor = [
            authorization.RoleAssignment(
                f"{name}-network-contributor-{subnet}", principal_id=self.identity.principal_id,
                principal_type="ServicePrincipal",
                role_definition_id=role_definition_id(args.subscription_id, NETWORK_CONTRIBUTOR_ROLE),
                scope=subnet_id, opts=pulumi.ResourceOptions(parent=self))
            for subnet, subnet_id in sorted(args.subnet_ids.items())
        ]
        self.register_outputs({"id": self.identity.id, "principal_id": self.identity.principal_id})
