"""What `pulumi up` would create for a stack, computed offline.

The real program (infra/program.py) runs under Pulumi's own mocks, with the stack file's
values, no credentials and no engine. Every resource registration is recorded with its
parent, inputs and options; nothing is sent anywhere. The unit tests run the same way.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from infra import catalog, pricing
from infra.config import NAMESPACE, StackConfig, from_values
from infra.model import Environment
from infra import specs
from infra.render.names import KAITO_COMMIT, KAITO_TARGET

PROJECT = "kaito-gitops"
FAKE_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
# What listClusterUserCredential returns with format=exec on an Entra ID cluster: a kubelogin exec user
# (AKS kubelogin-authentication.md); without format=exec, a legacy azure auth-provider user.
FAKE_KUBECONFIG = {
    "exec": "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers:\n- name: clusterUser\n  user:\n"
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n"
            "      args: [get-token, --login, devicecode, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]\n",
    "azure": "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers:\n- name: clusterUser\n  user:\n"
             "    auth-provider:\n      name: azure\n",
}


@dataclass
class PlannedResource:
    urn: str
    type: str
    name: str
    parent: str  # parent URN ("" for the stack)
    inputs: dict[str, Any]
    protect: bool
    dependencies: list[str]
    replace_on_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)  # former URNs the engine would match in the state


@dataclass
class PoolCapacity:
    name: str
    vm_size: str
    gpu: str
    gpus_per_node: int
    gpu_memory_gib: int
    min_nodes: int
    max_nodes: int
    spot: bool

    @property
    def max_gpus(self) -> int:
        return self.gpus_per_node * self.max_nodes


@dataclass
class Plan:
    env: str
    config: StackConfig
    environment: Environment
    resources: list[PlannedResource]
    objects: list[dict[str, Any]]

    @property
    def pools(self) -> list[PoolCapacity]:
        out = []
        for p in self.config.gpu_pools:
            sku = catalog.sku(p.vm_size)
            out.append(PoolCapacity(p.name, p.vm_size, sku.gpu, sku.gpus, sku.gpu_memory_gib, p.min_count,
                                    p.max_count, p.spot))
        return out

    def by_type(self, type_: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_]

    @property
    def gpu_nodes(self) -> list[pricing.GpuNodes]:
        return pricing.gpu_nodes(self.environment, self.pools, self.config.location)

    @property
    def kaito(self) -> str:
        """The KAITO the environment says its cluster runs, against the one the manifests target."""
        settings = self.environment.defaults["kaito"]
        return (f"KAITO {settings['version']} on the cluster (declared in workloads/{self.env}/_defaults.yaml), "
                f"manifests for KAITO {KAITO_TARGET} ({KAITO_COMMIT}); GPU nodes: "
                + ("KAITO provisions one per Workspace node" if settings["nodeProvisioning"] == "auto"
                   else f"bring-your-own, Workspaces run on pool {self.environment.defaults['nodePool']}"))


def stack_values(env: str, root: Path | None = None) -> dict[str, Any]:
    """The stack file's values for our namespace, keys without the prefix."""
    root = specs.REPO_ROOT if root is None else root
    from infra.config import ConfigError
    from infra.yamlload import load_file

    path = root / f"Pulumi.{env}.yaml"
    try:  # the spec loader's strictness: duplicate keys, aliases, size and depth bounds, no Python tags
        doc, problems = load_file(path, path.name)
    except OSError as error:
        raise ConfigError([f"cannot read the file ({error.strerror or error})"]) from None
    if problems and doc.data is None and problems[0].message == "file is empty":
        return {}
    if problems:
        raise ConfigError([f"line {d.line}: {d.json_path}: {d.message}" + (f" (hint: {d.hint})" if d.hint else "")
                           for d in problems])
    config = doc.data.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError([f"line {doc.line('$.config')}: config: must be a mapping of `{NAMESPACE}:<key>: value`"])
    out = {}
    for key, value in config.items():
        if isinstance(key, str) and key.startswith(f"{NAMESPACE}:"):
            out[key.split(":", 1)[1]] = value
    return out


def stacks(root: Path | None = None) -> list[str]:
    root = specs.REPO_ROOT if root is None else root
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def load_stack_config(env: str, root: Path | None = None) -> StackConfig:
    return from_values(env, stack_values(env, root))


def _computed_outputs(args) -> dict[str, Any]:
    """What Azure would fill in after creation, so outputs the program chains on resolve."""
    inputs = args.inputs
    name = (inputs.get("resourceName") or inputs.get("registryName") or inputs.get("agentPoolName")
            or inputs.get("tokenName") or inputs.get("scopeMapName") or args.name)
    state = {**inputs, "name": name}
    if args.typ == "azure-native:containerservice:ManagedCluster":
        state["identityProfile"] = {"kubeletidentity": {"objectId": f"{args.name}-kubelet-object-id",
                                                        "clientId": f"{args.name}-kubelet-client-id"}}
        state["oidcIssuerProfile"] = {"enabled": True, "issuerUrl": f"https://oidc.example/{args.name}/"}
        identity = inputs.get("identity") or {}
        if identity.get("userAssignedIdentities"):  # a list in the request, a map in Azure's response
            state["identity"] = {**identity, "userAssignedIdentities": {
                i: {"principalId": f"{i}-principal-id", "clientId": f"{i}-client-id"}
                for i in identity["userAssignedIdentities"]}}
    elif args.typ == "azure-native:containerregistry:Registry":
        state["loginServer"] = f"{str(name).lower()}.azurecr.io"
    elif args.typ == "azure-native:network:PublicIPAddress":
        state["ipAddress"] = "203.0.113.10"  # TEST-NET-3 (RFC 5737): Azure allocates a static IP on creation
    elif args.typ == "azure-native:managedidentity:UserAssignedIdentity":
        state.update(principalId=f"{args.name}-principal-id", clientId=f"{args.name}-client-id")
    return state


def _alias_urn(alias: Any, request: Any, stack: str) -> str:
    """The URN an alias stands for, as the engine forms it: `urn:pulumi:<stack>::<project>::<parent's
    qualified type>$<type>::<name>`, the root stack's type left out, unset parts taken from the resource
    (pulumi/pulumi pkg/resource/deploy/deployment.go `generateURN`, source_eval.go alias specs). The mock
    monitor does put `pulumi:pulumi:Stack$` before top-level types, so that is dropped here too."""
    if alias.WhichOneof("alias") == "urn":
        return alias.urn
    spec = alias.spec
    parent = "" if spec.noParent else (spec.parentUrn if spec.WhichOneof("parent") == "parentUrn" else request.parent)
    parent_types = [t for t in (parent.split("::")[2].split("$") if parent else []) if t != "pulumi:pulumi:Stack"]
    chain = "$".join([*parent_types, spec.type or request.type])
    return f"urn:pulumi:{spec.stack or stack}::{spec.project or PROJECT}::{chain}::{spec.name or request.name}"


def run_program(cfg: StackConfig, env: Environment) -> Plan:
    """Run infra/program.py under Pulumi's mocks and record every resource it registers."""
    import pulumi
    from pulumi.runtime import mocks as pulumi_mocks
    from pulumi.runtime import rpc

    from infra.program import build
    from infra.render import render_environment

    recorded: list[PlannedResource] = []

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args):
            return f"{args.name}-id", _computed_outputs(args)

        def call(self, args):
            if args.token == "azure-native:authorization:getClientConfig":
                return {"subscriptionId": FAKE_SUBSCRIPTION, "tenantId": FAKE_SUBSCRIPTION,
                        "clientId": FAKE_SUBSCRIPTION, "objectId": FAKE_SUBSCRIPTION}
            if args.token == "azure-native:containerservice:listManagedClusterUserCredentials":
                kubeconfig = FAKE_KUBECONFIG["exec" if args.args.get("format") == "exec" else "azure"]
                value = base64.b64encode(kubeconfig.encode()).decode()
                return {"kubeconfigs": [{"name": "clusterUser", "value": value}]}
            return {}

    class Monitor(pulumi_mocks.MockMonitor):
        def RegisterResource(self, request):
            response = super().RegisterResource(request)
            if request.type != "pulumi:pulumi:Stack":
                recorded.append(PlannedResource(
                    urn=response.urn, type=request.type, name=request.name, parent=request.parent,
                    inputs=rpc.deserialize_properties(request.object),
                    protect=bool(request.protect), dependencies=list(request.dependencies),
                    replace_on_changes=list(request.replaceOnChanges),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    ignore_changes=list(request.ignoreChanges),
                    aliases=[_alias_urn(a, request, cfg.stack) for a in request.aliases]))
            return response

    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=cfg.stack, preview=True, monitor=Monitor(mocks))
    @pulumi.runtime.test
    def program():
        build(cfg, env)

    program()
    return Plan(env=cfg.stack, config=cfg, environment=env, resources=recorded, objects=render_environment(env))


def build_plan(env_name: str, root: Path | None = None, base: Environment | None = None) -> Plan:
    """The plan for a stack: its config from Pulumi.<env>.yaml, its workloads from workloads/<env>/.

    Raises infra.config.ConfigError or infra.diagnostics.SpecError with every problem found.
    """
    from infra.specs import load_environment

    root = specs.REPO_ROOT if root is None else root
    cfg = load_stack_config(env_name, root)
    return run_program(cfg, load_environment(env_name, root / "workloads", base=base))


# --- formatting -------------------------------------------------------------

KEY_PROPERTIES = {
    "azure-native:resources:ResourceGroup": ["location"],
    "azure-native:network:VirtualNetwork": ["addressSpace"],
    "azure-native:network:Subnet": ["addressPrefix"],
    "azure-native:containerservice:ManagedCluster": ["kubernetesVersion", "aiToolchainOperatorProfile",
                                                     "oidcIssuerProfile", "disableLocalAccounts", "networkProfile",
                                                     "autoUpgradeProfile", "apiServerAccessProfile"],
    "azure-native:containerservice:AgentPool": ["agentPoolName", "vmSize", "minCount", "maxCount",
                                                "scaleSetPriority", "nodeTaints", "nodeLabels", "osDiskType"],
    "azure-native:containerservice:MaintenanceConfiguration": ["configName", "maintenanceWindow"],
    "azure-native:containerregistry:Registry": ["registryName", "sku", "adminUserEnabled"],
    "azure-native:containerregistry:ScopeMap": ["actions"],
    "azure-native:authorization:RoleAssignment": ["roleDefinitionId", "scope"],
    "kubernetes:core/v1:Namespace": ["metadata"],
}


def _plain(value: Any) -> Any:
    """Pulumi's wire format has only floats; show whole numbers as integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _short(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"name", "labels"}:
        return value["name"]
    text = json.dumps(_plain(value), sort_keys=True, default=str)
    return text if len(text) <= 100 else text[:97] + "..."


def _describe(resource: PlannedResource) -> list[str]:
    keys = KEY_PROPERTIES.get(resource.type, [])
    lines = [f"{k}: {_short(resource.inputs[k])}" for k in keys if resource.inputs.get(k) not in (None, "", {}, [])]
    if resource.type == "kubernetes:yaml/v2:ConfigGroup":
        lines += [f"{o['kind']} {o['metadata'].get('namespace', '')}/{o['metadata']['name']}"
                  for o in resource.inputs.get("objs", [])]
    if resource.protect:
        lines.append("protect: true")
    if resource.replace_on_changes:
        lines.append("replaced, deleting first, when any of these change: " + ", ".join(resource.replace_on_changes))
    return lines


def format_text(plan: Plan) -> str:
    children: dict[str, list[PlannedResource]] = {}
    for r in plan.resources:
        children.setdefault(r.parent, []).append(r)
    roots = [r for r in plan.resources if r.parent not in {x.urn for x in plan.resources}]
    out = [f"Plan for stack {plan.env} ({plan.config.location}): {len(plan.resources)} resources to create", ""]

    def walk(r: PlannedResource, depth: int) -> None:
        pad = "  " * depth
        out.append(f"{pad}+ {r.type} {r.name}")
        out.extend(f"{pad}    {line}" for line in _describe(r))
        for child in children.get(r.urn, []):
            walk(child, depth + 1)

    for r in roots:
        walk(r, 0)
    out += ["", "GPU capacity:"]
    for p in plan.pools:
        out.append(f"  {p.name}: {p.vm_size} ({p.gpus_per_node}x {p.gpu} {p.gpu_memory_gib} GiB), "
                   f"{p.min_nodes}-{p.max_nodes} nodes, up to {p.max_gpus} GPUs, {'Spot' if p.spot else 'regular'}")
    out += ["", "GPU nodes (which exist and which stay up):"]
    for n in plan.gpu_nodes:
        standing = n.standing_per_hour()
        cost = "unknown" if standing is None else f"${standing:,.2f}/h"
        out.append(f"  {n.owner}: {n.nodes} x {n.instance_type}{' Spot' if n.spot else ''}, bills {n.billing}; "
                   f"standing cost {cost}")
    out += ["", plan.kaito]
    out += ["", f"Workloads ({len(plan.environment.workloads)}):"]
    for w in plan.environment.workloads:
        placement = w.spec["placement"]
        extra = f", engine {w.spec['engine']}" if "engine" in w.spec else ""
        retired = ", retired: nothing deployed" if w.retired else ""
        out.append(f"  {w.kind} {w.namespace}/{w.name} on {placement['instanceType']}{extra}{retired}")
        if hint := catalog.method_hint(w.spec):
            out.append(f"    hint: {hint}")
    return "\n".join(out)


def format_json(plan: Plan) -> str:
    return json.dumps({
        "stack": plan.env,
        "resources": [{"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent, "protect": r.protect,
                       "replace_on_changes": r.replace_on_changes, "delete_before_replace": r.delete_before_replace,
                       "inputs": r.inputs} for r in plan.resources],
        "pools": [{**p.__dict__, "max_gpus": p.max_gpus} for p in plan.pools],
        "gpu_nodes": [{**dataclasses.asdict(n), "standing_per_hour": n.standing_per_hour()} for n in plan.gpu_nodes],
        "kaito": {**plan.environment.defaults["kaito"], "target": KAITO_TARGET, "commit": KAITO_COMMIT},
        "workloads": [{"kind": w.kind, "name": w.name, "team": w.team, "namespace": w.namespace,
                       "retired": w.retired} for w in plan.environment.workloads],
    }, indent=2, default=str)
