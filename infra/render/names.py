"""The one place that decides rendered names, labels, namespaces and shared constants.

Every module of `infra.render` and every reader of rendered objects (the Pulumi
pools, the review comment) takes names and labels from here, so a rename is one edit.
"""

from __future__ import annotations

from typing import Any

from infra.model import Environment, Workload

WORKSPACE_API = "kaito.sh/v1beta1"
PART_OF = "kaito-gitops"
TEAM_LABEL = "kaito-gitops.dev/team"
ENV_LABEL = "kaito-gitops.dev/environment"
POOL_LABEL = "kaito-gitops.dev/pool"
COMPONENT_LABEL = "app.kubernetes.io/component"  # "tuning" or "inference"
DEFAULT_PULL_SECRET = "acr-pull"
GPU_TAINT = {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}


def labels(env: Environment, team: str, name: str | None = None, component: str | None = None) -> dict[str, str]:
    out = {
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": PART_OF,
        TEAM_LABEL: team,
        ENV_LABEL: env.name,
    }
    if name:
        out["app.kubernetes.io/name"] = name
    if component:
        out[COMPONENT_LABEL] = component
    return out


def meta(env: Environment, w: Workload, name: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": w.namespace, "labels": labels(env, w.team, w.name, component)}


def adapter_image(env: Environment, job: Workload) -> str:
    image = job.spec["output"]["image"]
    return f"{env.defaults['registry']}/{image['repository']}:{image['tag']}"


def pull_secret(env: Environment) -> str:
    """The read-scoped registry secret (a dockerconfigjson) every pull in a team namespace uses."""
    return env.defaults.get("pullSecret", DEFAULT_PULL_SECRET)


def config_map_name(w: Workload) -> str:
    return f"{w.name}-training-config"


def namespace_name(env: Environment, team: str) -> str:
    return env.defaults.get("namespace", "{team}").replace("{team}", team)


def checkpoint_claim_name(w: Workload) -> str:
    return f"{w.name}-checkpoints"
