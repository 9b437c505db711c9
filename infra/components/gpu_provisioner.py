"""Legacy KAITO gpu-provisioner identity wiring, for clusters that run that component themselves.

Current AKS runs the provisioner in its control plane with the add-on, so this is off by
default (config legacyGpuProvisioner).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, managedidentity

from infra.components.registry import role_definition_id

CONTRIBUTOR_ROLE = "b24988ac-6180-42a0-ab88-20f7382dd24c"
SUBJECT = "system:serviceaccount:kube-system:kaito-gpu-provisioner"


@dataclass
class GpuProvisionerIdentityArgs:
    resource_group_name: pulumi.Input[str]
    resource_group_id: pulumi.Input[str]
    location: str
    oidc_issuer_url: pulumi.Input[str]
    subscription_id: pulumi.Input[str]


class GpuProvisionerIdentity(pulumi.ComponentResource):
    def __init__(self, name: str, args: GpuProvisionerIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kaito-gitops:infra:GpuProvisionerIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.identity = managedidentity.UserAssignedIdentity(
            name, resource_group_name=args.resource_group_name, location=args.location, opts=child)
        self.federation = managedidentity.FederatedIdentityCredential(
            f"{name}-federation", resource_group_name=args.resource_group_name,
            resource_name_=self.identity.name, issuer=args.oidc_issuer_url, subject=SUBJECT,
            audiences=["api://AzureADTokenExchange"], opts=child)
        self.contributor = authorization.RoleAssignment(
            f"{name}-contributor", principal_id=self.identity.principal_id, principal_type="ServicePrincipal",
            role_definition_id=role_definition_id(args.subscription_id, CONTRIBUTOR_ROLE),
            scope=args.resource_group_id, opts=child)
        self.register_outputs({"client_id": self.identity.client_id})
