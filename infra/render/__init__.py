"""Render an environment's validated workloads into Kubernetes objects.

The same list feeds `kaito-gitops render` (plain manifests for Flux or Argo CD),
`kaito-gitops diff`, the plan, and the Pulumi program, so what reviewers see is
exactly what gets deployed. Output is deterministic: objects sorted, keys
sorted when written.

One module per rendered concern: `names` (names, labels, constants), `tuning`
(training ConfigMap, KAITO tuning Workspace), `inference` (inference Workspace or InferenceSet),
`bundled` (our trainer's Job), `output` (files on disk).
"""

from __future__ import annotations

from typing import Any

from infra.model import INFERENCE_KIND, TUNING_KIND, Environment, Workload
from infra.render import bundled, inference, names, tuning
from infra.render.names import GPU_TAINT, POOL_LABEL, TEAM_LABEL, adapter_image, config_map_name, labels
from infra.render.output import MARKER, OutputDirError, manifest_path, to_yaml, write_manifests
from infra.render.tuning import training_config

__all__ = [
    "GPU_TAINT", "MARKER", "POOL_LABEL", "TEAM_LABEL", "OutputDirError", "adapter_image", "config_map_name",
    "labels", "manifest_path", "object_key", "render_environment", "to_yaml", "training_config", "write_manifests",
]

ORDER = {"Namespace": 0, "ConfigMap": 1, "PersistentVolumeClaim": 2, "Job": 3, "Workspace": 4, "InferenceSet": 5}


def render_environment(env: Environment) -> list[dict[str, Any]]:
    objects = [_namespace(env, team) for team in sorted(env.defaults.get("teams", {}))]
    jobs = {w.name: w for w in env.workloads if w.kind == TUNING_KIND}
    for w in env.workloads:
        if w.retired:  # its adapter image stays; inference still resolves `tuningJob: <name>` through `jobs`
            continue
        if w.kind == TUNING_KIND:
            objects += _tuning(env, w, jobs)
        elif w.kind == INFERENCE_KIND:
            objects += inference.objects(env, w, jobs)
    return sorted(objects, key=object_key)


def object_key(obj: dict[str, Any]) -> tuple:
    meta = obj["metadata"]
    return (ORDER.get(obj["kind"], 9), meta.get("namespace", ""), obj["kind"], meta["name"])


def _namespace(env: Environment, team: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": names.namespace_name(env, team), "labels": labels(env, team)}}


def _tuning(env: Environment, w: Workload, jobs: dict[str, Workload]) -> list[dict[str, Any]]:
    config_map = tuning.config_map(env, w)
    if w.spec["engine"] == "kaito":
        return [config_map, tuning.workspace(env, w)]
    return [config_map, bundled.checkpoint_claim(env, w), bundled.job(env, w, jobs)]
