"""The environment's rendered workloads, deployed unchanged.

The objects come from infra.render (the same list `kaito-gitops render` writes), so a
reviewed diff is what gets applied. A KAITO Workspace has top-level resource/tuning/
inference fields, which pulumi-kubernetes' Python CustomResource (spec only) cannot
express; yaml/v2 ConfigGroup takes whole objects and sends them as they are. A removed
spec drops its ConfigGroup, so `pulumi up` deletes its objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

NAME_LABEL = "app.kubernetes.io/name"


@dataclass
class WorkloadsArgs:
    environment: str
    objects: list[dict[str, Any]]
    kubeconfig: pulumi.Input[str]
    depends_on: list[pulumi.Resource]


def group_by_workload(objects: list[dict[str, Any]]) -> tuple[list[dict], dict[str, list[dict]]]:
    """Namespaces apart, then each workload's objects together (one ConfigGroup per spec file)."""
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    groups: dict[str, list[dict]] = {}
    for obj in objects:
        if obj["kind"] != "Namespace":
            groups.setdefault(obj["metadata"]["labels"][NAME_LABEL], []).append(obj)
    return namespaces, groups


class Workloads(pulumi.ComponentResource):
    def __init__(self, name: str, args: WorkloadsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kaito-gitops:infra:Workloads", name, None, opts)
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=args.kubeconfig, enable_server_side_apply=True,
                                     opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on))
        on_cluster = pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=args.depends_on)
        namespaces, groups = group_by_workload(args.objects)
        self.namespaces = [
            k8s.core.v1.Namespace(f"{name}-ns-{ns['metadata']['name']}", metadata=ns["metadata"], opts=on_cluster)
            for ns in namespaces
        ]
        after_namespaces = pulumi.ResourceOptions(parent=self, provider=self.provider,
                                                  depends_on=[*args.depends_on, *self.namespaces])
        self.groups = {
            workload: k8s.yaml.v2.ConfigGroup(f"{args.environment}-{workload}", objs=objs, opts=after_namespaces)
            for workload, objs in sorted(groups.items())
        }
        self.register_outputs({"workloads": sorted(self.groups)})
