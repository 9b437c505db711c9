"""The one place that decides rendered names, labels, namespaces and shared constants.

Every module of `infra.render` and every reader of rendered objects (the Pulumi
pools, the review comment) takes names and labels from here, so a rename is one edit.
"""

from __future__ import annotations

from typing import Any

from infra.model import Environment, Workload

WORKSPACE_API = "kaito.sh/v1beta1"  # Workspace and InferenceSet alike
RUNTIME_ANNOTATION = "kaito.sh/runtime"  # KAITO's AnnotationWorkspaceRuntime: "vllm" (default) or "transformers"
# The read-only pull secret (kubernetes.io/dockerconfigjson, a registry token scoped to content/read) that
# every team namespace holds: KAITO pulls adapter and data images with it, never with the kubelet identity.
# Separate from the push secret (`pushSecret` in _defaults.yaml), so a serving pod can never overwrite an image.
PULL_SECRET = "acr-adapter-pull"
PART_OF = "kaito-gitops"
TEAM_LABEL = "kaito-gitops.dev/team"
ENV_LABEL = "kaito-gitops.dev/environment"
POOL_LABEL = "kaito-gitops.dev/pool"
COMPONENT_LABEL = "app.kubernetes.io/component"  # "tuning" or "inference"
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


def pull_secrets(registry: str, image: str, explicit: list[str] | None = None) -> list[str]:
    """imagePullSecrets for pulling `image`: the spec's own, else the read secret for images in `registry`."""
    if explicit:
        return list(explicit)
    return [PULL_SECRET] if image.startswith(registry + "/") else []


def tuning_input_name(w: Workload) -> str:
    return f"{w.name}-data"


def selector(w: Workload) -> dict[str, Any]:
    """The label selector of the nodes KAITO provisions for the workload (immutable once admitted)."""
    return {"matchLabels": {"apps": w.name}}


def config_map_name(w: Workload) -> str:
    return f"{w.name}-training-config"


def namespace_name(env: Environment, team: str) -> str:
    return env.defaults.get("namespace", "{team}").replace("{team}", team)


def checkpoint_claim_name(w: Workload) -> str:
    return f"{w.name}-checkpoints"
