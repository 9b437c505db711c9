"""Drift that `pulumi preview --refresh` cannot see: AKS agent pools the program does not declare.

KAITO's gpu-provisioner turns each NodeClaim into an AKS agent pool of its own, labelled
`karpenter.sh/nodepool=kaito` and `kaito.sh/workspace=<workspace>` (Azure/gpu-provisioner
pkg/providers/instance/instance.go, newAgentPoolObject). Those pools are not Pulumi resources, so a
refreshed preview never lists them; they cost GPU hours until their Workspace is deleted.

`python -m infra.drift node-pools --env dev --agent-pools pools.json` compares the output of
`az aks nodepool list -o json` with the pools the stack declares (read from the program run under
mocks, as `kaito-gitops plan` does) and prints a markdown report. Exit 0: no undeclared pool; 1: some;
2: unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

PROG = "python -m infra.drift"
KAITO_NODEPOOL_LABEL = "karpenter.sh/nodepool"
KAITO_WORKSPACE_LABEL = "kaito.sh/workspace"
KAITO_WORKSPACE_NAMESPACE_LABEL = "kaito.sh/workspacenamespace"


@dataclass
class UndeclaredPool:
    name: str
    vm_size: str
    count: int
    workspace: str | None  # "<namespace>/<name>" when KAITO created the pool

    @property
    def created_by(self) -> str:
        return f"KAITO, for Workspace `{self.workspace}`" if self.workspace else "not this program, not KAITO"


def declared_pools(env: str) -> set[str]:
    """Agent pool names the stack creates: the cluster's inline system pool and each AgentPool resource."""
    from infra.plan import build_plan

    plan = build_plan(env)
    names = {profile["name"] for r in plan.by_type("azure-native:containerservice:ManagedCluster")
             for profile in r.inputs.get("agentPoolProfiles", [])}
    names |= {r.inputs["agentPoolName"] for r in plan.by_type("azure-native:containerservice:AgentPool")}
    return names


def undeclared_pools(agent_pools: list[dict], declared: set[str]) -> list[UndeclaredPool]:
    """Pools present on the cluster but absent from the program, with the Workspace KAITO made them for."""
    out = []
    for pool in sorted(agent_pools, key=lambda p: p["name"]):
        if pool["name"] in declared:
            continue
        labels = pool.get("nodeLabels") or {}
        workspace = None
        if labels.get(KAITO_NODEPOOL_LABEL) == "kaito" or KAITO_WORKSPACE_LABEL in labels:
            name = labels.get(KAITO_WORKSPACE_LABEL, "?")
            namespace = labels.get(KAITO_WORKSPACE_NAMESPACE_LABEL)
            workspace = f"{namespace}/{name}" if namespace else name
        out.append(UndeclaredPool(pool["name"], pool.get("vmSize", "?"), pool.get("count") or 0, workspace))
    return out


def report(env: str, pools: list[UndeclaredPool]) -> str:
    if not pools:
        return f"**`{env}`**: every AKS agent pool is declared in the program.\n"
    lines = [f"**`{env}`**: {len(pools)} agent pool(s) not declared in the program:", "",
             "| pool | VM size | nodes | created by |", "|---|---|---|---|"]
    lines += [f"| `{p.name}` | {p.vm_size} | {p.count} | {p.created_by} |" for p in pools]
    lines += ["", "A KAITO pool goes away when its Workspace is deleted: for a finished tuning job, merge the "
              "retire workflow's pull request (or set `retired: true` in its spec); a Workspace deleted only with "
              "kubectl comes back with the next `pulumi up --refresh` or replacement. Delete any other pool with "
              "`az aks nodepool delete` after finding out who made it (docs/infrastructure.md, Drift)."]
    return "\n".join(lines) + "\n"


def load_agent_pools(path: Path) -> list[dict]:
    """`az aks nodepool list -o json` output; ValueError naming the file and what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"{path}: cannot read: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}: not JSON: {error.msg} "
                         "(expected the output of `az aks nodepool list -o json`)") from None
    if not isinstance(data, list) or not all(isinstance(p, dict) and isinstance(p.get("name"), str) for p in data):
        raise ValueError(f"{path}: $: expected a list of agent pools, each with a `name` "
                         "(the output of `az aks nodepool list -o json`)")
    return data


def main(argv: list[str] | None = None) -> int:
    from infra.cli import guarded

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    pools_cmd = sub.add_parser("node-pools", help="report AKS agent pools the stack does not declare")
    pools_cmd.add_argument("--env", required=True, help="stack, e.g. dev")
    pools_cmd.add_argument("--agent-pools", type=Path, required=True,
                           help="file with the output of `az aks nodepool list -o json`")
    args = parser.parse_args(argv)
    return guarded(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from infra.config import ConfigError
    from infra.diagnostics import SpecError
    from infra.plan import stacks

    if args.env not in stacks():
        print(f"{PROG}: no stack {args.env!r} (Pulumi.{args.env}.yaml); stacks: "
              f"{', '.join(stacks())}", file=sys.stderr)
        return 2
    try:
        agent_pools = load_agent_pools(args.agent_pools)
        declared = declared_pools(args.env)
    except ValueError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    except ConfigError as error:
        print(f"{PROG}: Pulumi.{args.env}.yaml is invalid:", *error.problems, sep="\n", file=sys.stderr)
        return 2
    except SpecError as error:
        print(f"{PROG}: workloads/{args.env}/ does not validate:", *sorted(map(str, error.diagnostics)),
              sep="\n", file=sys.stderr)
        return 2
    pools = undeclared_pools(agent_pools, declared)
    sys.stdout.write(report(args.env, pools))
    return 1 if pools else 0


if __name__ == "__main__":
    sys.exit(main())
