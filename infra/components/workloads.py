"""The environment's rendered workloads, deployed unchanged, one Pulumi resource per object.

The objects come from infra.render (the same list `kaito-gitops render` writes), so a
reviewed diff is what gets applied. Each object is registered as the provider's generic
`kubernetes:<apiVersion>:<kind>` resource with its fields as they are (a KAITO Workspace keeps
`resource`/`tuning`/`inference` at the top level, which the Python `CustomResource` class, spec
only, cannot express), so each gets its own options:

- a workload's training ConfigMap is created before the Workspace or Job that names it
  (KAITO's webhook refuses a tuning Workspace whose ConfigMap does not exist yet);
- a change to a field that cannot change in place (infra.lifecycle) replaces the object,
  deleting it first because the new one has the same name;
- a removed or retired spec drops its resources, so `pulumi up` deletes its objects;
- each object carries an alias to the URN it had when every workload was a `yaml/v2:ConfigGroup`,
  so a stack deployed that way keeps its objects (running Workspaces included) instead of deleting
  and re-creating them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.lifecycle import immutable_paths

NAME_LABEL = "app.kubernetes.io/name"
# Created first within a workload: the objects the others reference by name.
REFERENCED_KINDS = ("ConfigMap", "PersistentVolumeClaim")
# Until one resource per object, each workload was a ConfigGroup named `<environment>-<workload>`, a child
# of this component, and the group's name prefixed its children's: `<group>:<namespace>/<name>`
# (pulumi-kubernetes provider/pkg/provider/yaml/v2/configgroup.go, the group's name as default
# resourcePrefix; yaml.go `register`, the `%s:%s` name). The type token was the same as now.
CONFIG_GROUP_TYPE = "kubernetes:yaml/v2:ConfigGroup"


@dataclass
class WorkloadsArgs:
    environment: str
    objects: list[dict[str, Any]]
    kubeconfig: pulumi.Input[str]
    depends_on: list[pulumi.Resource]


def resource_type(obj: dict[str, Any]) -> str:
    """The provider's type token: `kubernetes:core/v1:ConfigMap`, `kubernetes:kaito.sh/v1beta1:Workspace`."""
    api = obj["apiVersion"] if "/" in obj["apiVersion"] else f"core/{obj['apiVersion']}"
    return f"kubernetes:{api}:{obj['kind']}"


def config_group_name(environment: str, workload: str) -> str:
    return f"{environment}-{workload}"


def resource_name(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


class KubernetesObject(pulumi.CustomResource):
    """One rendered object, sent to the Kubernetes provider field for field."""

    def __init__(self, obj: dict[str, Any], opts: pulumi.ResourceOptions):
        super().__init__(resource_type(obj), resource_name(obj), dict(obj), opts)


class Workloads(pulumi.ComponentResource):
    def __init__(self, name: str, args: WorkloadsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kaito-gitops:infra:Workloads", name, None, opts)
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=args.kubeconfig, enable_server_side_apply=True,
                                     opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on))
        on_cluster = pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=args.depends_on)
        namespaces = [o for o in args.objects if o["kind"] == "Namespace"]
        self.namespaces = [
            k8s.core.v1.Namespace(f"{name}-ns-{ns['metadata']['name']}", metadata=ns["metadata"], opts=on_cluster)
            for ns in namespaces
        ]
        after_namespaces = [*args.depends_on, *self.namespaces]
        self.objects: dict[str, list[KubernetesObject]] = {}
        workloads: dict[str, list[dict[str, Any]]] = {}
        for obj in args.objects:
            if obj["kind"] != "Namespace":
                workloads.setdefault(obj["metadata"]["labels"][NAME_LABEL], []).append(obj)
        for workload, objs in sorted(workloads.items()):
            group = config_group_name(args.environment, workload)
            former = pulumi.create_urn(group, CONFIG_GROUP_TYPE, parent=self)
            first = [o for o in objs if o["kind"] in REFERENCED_KINDS]
            referenced = [self._object(o, after_namespaces, group, former) for o in first]
            rest = [self._object(o, [*after_namespaces, *referenced], group, former) for o in objs if o not in first]
            self.objects[workload] = referenced + rest
        self.register_outputs({"workloads": sorted(self.objects)})

    def _object(self, obj: dict[str, Any], depends_on: list[pulumi.Resource], group: str,
                former_parent: pulumi.Output[str]) -> KubernetesObject:
        replace_on = list(immutable_paths(obj))
        return KubernetesObject(obj, pulumi.ResourceOptions(
            parent=self, provider=self.provider, depends_on=depends_on,
            replace_on_changes=replace_on or None, delete_before_replace=bool(replace_on),
            aliases=[pulumi.Alias(name=f"{group}:{resource_name(obj)}", parent=former_parent)]))
