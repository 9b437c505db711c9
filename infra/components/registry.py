"""The environment's container registry: pull for the cluster, push for adapter images, no admin user."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, containerregistry

# Built-in role definition ids (Azure RBAC built-in roles reference).
ACR_PULL_ROLE = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ANONYMOUS_PULL_SKUS = ("Standard", "Premium")  # the tiers where Azure offers anonymous pull at all
ADAPTER_REPOSITORIES = "adapters/*"  # where tuning jobs push (workloads' output.image.repository)
DATA_REPOSITORIES = "data/*"  # data images in our registry, read by KAITO's puller and the bundled Job


def role_definition_id(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    return pulumi.Output.concat("/subscriptions/", subscription_id, "/providers/Microsoft.Authorization/roleDefinitions/", role)


@dataclass
class RegistryArgs:
    name: str
    sku: str
    location: str
    resource_group_name: pulumi.Input[str]
    kubelet_object_id: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    protect: bool


class Registry(pulumi.ComponentResource):
    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kaito-gitops:infra:Registry", name, None, opts)
        self.registry = containerregistry.Registry(
            name, registry_name=args.name, resource_group_name=args.resource_group_name, location=args.location,
            sku={"name": args.sku}, admin_user_enabled=False,
            anonymous_pull_enabled=False if args.sku in ANONYMOUS_PULL_SKUS else None,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        self.kubelet_pull = authorization.RoleAssignment(
            f"{name}-kubelet-acrpull", principal_id=args.kubelet_object_id, principal_type="ServicePrincipal",
            role_definition_id=role_definition_id(args.subscription_id, ACR_PULL_ROLE), scope=self.registry.id,
            opts=pulumi.ResourceOptions(parent=self))
        # KAITO pushes adapter images with a dockerconfigjson imagePushSecret; a repository-scoped token
        # gives it push rights to adapters/* only, without the admin user (docs/infrastructure.md).
        self.adapter_scope = containerregistry.ScopeMap(
            f"{name}-adapter-push", registry_name=self.registry.name, resource_group_name=args.resource_group_name,
            scope_map_name="adapter-push", description="push and pull adapter images",
            actions=[f"repositories/{ADAPTER_REPOSITORIES}/content/read",
                     f"repositories/{ADAPTER_REPOSITORIES}/content/write",
                     f"repositories/{ADAPTER_REPOSITORIES}/metadata/read"],
            opts=pulumi.ResourceOptions(parent=self))
        self.adapter_token = containerregistry.Token(
            f"{name}-adapter-push-token", registry_name=self.registry.name, resource_group_name=args.resource_group_name,
            token_name="adapter-push", scope_map_id=self.adapter_scope.id, status="enabled",
            opts=pulumi.ResourceOptions(parent=self))
        # KAITO pulls adapter and data images only with imagePullSecrets, never with the kubelet's AcrPull
        # (docs/rendering.md, "Pull credentials"): a read-only token, kept apart from the push token.
        self.pull_scope = containerregistry.ScopeMap(
            f"{name}-adapter-pull", registry_name=self.registry.name, resource_group_name=args.resource_group_name,
            scope_map_name="adapter-pull", description="pull adapter and data images",
            actions=[f"repositories/{repositories}/{action}" for repositories in (ADAPTER_REPOSITORIES, DATA_REPOSITORIES)
                     for action in ("content/read", "metadata/read")],
            opts=pulumi.ResourceOptions(parent=self))
        self.pull_token = containerregistry.Token(
            f"{name}-adapter-pull-token", registry_name=self.registry.name, resource_group_name=args.resource_group_name,
            token_name="adapter-pull", scope_map_id=self.pull_scope.id, status="enabled",
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"login_server": self.registry.login_server})
