"""The one place that decides rendered names, labels, namespaces and shared constants.

Every module of `infra.render` and every reader of rendered objects (the Pulumi
pools, the review comment) takes names and labels from here, so a rename is one edit.
"""

from __future__ import annotations

import hashlib
from typing import Any

from infra.model import Environment, Workload

WORKSPACE_API = "kaito.sh/v1beta1"  # Workspace and InferenceSet alike
RUNTIME_ANNOTATION = "kaito.sh/runtime"  # KAITO's AnnotationWorkspaceRuntime: "vllm" (default) or "transformers"
# The read-only pull secret (kubernetes.io/dockerconfigjson, a registry token scoped to content/read) that
# every team namespace holds: KAITO pulls adapter and data images with it, never with the kubelet identity.
# Separate from the push secret (`pushSecret` in _defaults.yaml), so a serving pod can never overwrite an image.
PULL_SECRET = "acr-adapter-pull"
# The KAITO release the manifests are written for (kaito-project/kaito v0.12.0, commit 056b8280), and the
# minor versions a cluster may run for them to be read the same way (docs/rendering.md, "KAITO version").
KAITO_TARGET = "0.12.0"
KAITO_COMMIT = "056b8280"
KAITO_SUPPORTED_MINORS = ("0.12",)
# Argo CD applies lower waves first and waits for them (docs/gitops.md): training ConfigMaps go before the
# Workspace whose admission looks them up.
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
CONFIG_HASH_LENGTH = 10
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


def selector(env: Environment, w: Workload) -> dict[str, Any]:
    """The label selector of the workload's nodes (immutable once admitted): those KAITO provisions for it,
    or, with kaito.nodeProvisioning byo, the environment's GPU pool."""
    if env.defaults["kaito"]["nodeProvisioning"] == "byo":
        return {"matchLabels": {POOL_LABEL: env.defaults["nodePool"]}}
    return {"matchLabels": {"apps": w.name}}


def config_map_name(w: Workload) -> str:
    """Content-addressed: KAITO re-runs tuning only when the Workspace's `tuning` changes (its revision
    hash), so a new training config must change the name `tuning.config` holds."""
    return f"{w.name}-training-config-{config_hash(w)}"


def config_hash(w: Workload) -> str:
    from infra.render.tuning import config_text

    return hashlib.sha256(config_text(w).encode("utf-8")).hexdigest()[:CONFIG_HASH_LENGTH]


def namespace_name(env: Environment, team: str) -> str:
    return env.defaults.get("namespace", "{team}").replace("{team}", team)


def checkpoint_claim_name(w: Workload) -> str:
    return f"{w.name}-checkpoints"
