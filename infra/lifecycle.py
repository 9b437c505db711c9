"""Fields of rendered objects that cannot change in place.

KAITO's webhook refuses an update that changes them, and Kubernetes or pulumi-kubernetes
refuse or replace for the others, so the object must be deleted and created again. The diff
and the plan comment call such a change "replaced"; the Pulumi program replaces the object
(delete first: the new one has the same name). Sources are in docs/rendering.md.
"""

from __future__ import annotations

from typing import Any

WORKSPACE = ("kaito.sh/v1beta1", "Workspace")
JOB = ("batch/v1", "Job")
CLAIM = ("v1", "PersistentVolumeClaim")

# KAITO v0.12 api/v1beta1/workspace_validation.go: ResourceSpec.validateUpdate (instanceType, labelSelector,
# count), TuningSpec.validateUpdate (preset, method, input name), InferenceSpec.validateUpdate (preset).
# pulumi-kubernetes provider/pkg/provider/diff.go forceNew: Job (completions, parallelism, selector, template),
# PersistentVolumeClaim (accessModes, selector, storageClassName, volumeName).
IMMUTABLE: dict[tuple[str, str], tuple[str, ...]] = {
    WORKSPACE: ("resource.instanceType", "resource.labelSelector", "resource.count", "tuning.preset",
                "tuning.method", "tuning.input.name", "inference.preset"),
    JOB: ("spec.completions", "spec.parallelism", "spec.selector", "spec.template"),
    CLAIM: ("spec.accessModes", "spec.selector", "spec.storageClassName", "spec.volumeName"),
}
# Neither may be added to or removed from an existing Workspace (Workspace.validateUpdate).
WORKSPACE_SECTIONS = ("tuning", "inference")


def immutable_paths(obj: dict[str, Any]) -> tuple[str, ...]:
    return IMMUTABLE.get((obj["apiVersion"], obj["kind"]), ())


def _get(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def replaced_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The immutable fields that differ between two versions of one object (same kind, namespace, name)."""
    toggled = [s for s in WORKSPACE_SECTIONS if (s in old) != (s in new)] \
        if (new["apiVersion"], new["kind"]) == WORKSPACE else []
    changed = [path for path in immutable_paths(new)
               if path.split(".")[0] not in toggled and _get(old, path) != _get(new, path)]
    return changed + toggled
