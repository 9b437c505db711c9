"""InferenceDeployment specs: KAITO's inference Workspace, or an InferenceSet of them for several replicas."""

from __future__ import annotations

from typing import Any

from infra.model import Environment, Workload
from infra.render import names
from infra.render.common import image_source, instance_type, resource


def objects(env: Environment, w: Workload, jobs: dict[str, Workload]) -> list[dict[str, Any]]:
    """One Workspace; with `replicas` above 1, KAITO's InferenceSet, whose controller creates that many."""
    if w.spec["replicas"] > 1:
        return [inference_set(env, w, jobs)]
    return [workspace(env, w, jobs)]


def workspace(env: Environment, w: Workload, jobs: dict[str, Workload]) -> dict[str, Any]:
    metadata = names.meta(env, w, w.name, "inference")
    metadata["annotations"] = _annotations(w)
    return {
        "apiVersion": names.WORKSPACE_API,
        "kind": "Workspace",
        "metadata": metadata,
        "resource": resource(env, w),
        "inference": _inference(env, w, jobs),
    }


def inference_set(env: Environment, w: Workload, jobs: dict[str, Workload]) -> dict[str, Any]:
    """KAITO copies the template's labels and annotations onto each Workspace it creates, with the set's
    labelSelector and the template's instanceType (pkg/utils/inferenceset/inferenceset.go), so the runtime
    choice and the node selection reach every replica."""
    return {
        "apiVersion": names.WORKSPACE_API,
        "kind": "InferenceSet",
        "metadata": names.meta(env, w, w.name, "inference"),
        "spec": {
            "replicas": w.spec["replicas"],
            "labelSelector": names.selector(env, w),
            "template": {
                "metadata": {"labels": names.labels(env, w.team, w.name, "inference"),
                             "annotations": _annotations(w)},
                "resource": instance_type(env, w),
                "inference": _inference(env, w, jobs),
            },
        },
    }


def _annotations(w: Workload) -> dict[str, str]:
    return {names.RUNTIME_ANNOTATION: w.spec["runtime"]}


def _inference(env: Environment, w: Workload, jobs: dict[str, Workload]) -> dict[str, Any]:
    preset: dict[str, Any] = {"name": w.spec["preset"]}
    if "modelAccessSecret" in w.spec:
        preset["presetOptions"] = {"modelAccessSecret": w.spec["modelAccessSecret"]}
    out: dict[str, Any] = {"preset": preset}
    adapters = [_adapter(env, w, adapter, jobs) for adapter in w.spec["adapters"]]
    if adapters:
        out["adapters"] = adapters
    return out


def _adapter(env: Environment, w: Workload, adapter: dict[str, Any], jobs: dict[str, Workload]) -> dict[str, Any]:
    if "tuningJob" in adapter:
        image = names.adapter_image(env, jobs[adapter["tuningJob"]])
    else:
        image = adapter["image"]
    out: dict[str, Any] = {"source": {"name": adapter["name"], **image_source(env, image, adapter.get("pullSecrets"))}}
    if w.spec["runtime"] == "transformers" and "strength" in adapter:
        out["strength"] = _strength(adapter["strength"])  # vLLM refuses any strength (pkg/model/interface.go)
    return out


def _strength(value: float) -> str:
    """KAITO v1beta1 keeps adapter strength as a string; write the shortest exact form."""
    return str(float(value))
