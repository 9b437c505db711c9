"""InferenceDeployment specs: KAITO's inference Workspace with its adapters."""

from __future__ import annotations

from typing import Any

from infra.model import Environment, Workload
from infra.render import names
from infra.render.common import resource, source


def workspace(env: Environment, w: Workload, jobs: dict[str, Workload]) -> dict[str, Any]:
    adapters = []
    for adapter in w.spec["adapters"]:
        if "tuningJob" in adapter:
            job = jobs[adapter["tuningJob"]]
            adapter_source: dict[str, Any] = {"name": adapter["name"], "image": names.adapter_image(env, job)}
        else:
            adapter_source = source(adapter, name=adapter["name"])
        adapters.append({"source": adapter_source, "strength": _strength(adapter["strength"])})
    inference: dict[str, Any] = {"preset": {"name": w.spec["preset"]}}
    if adapters:
        inference["adapters"] = adapters
    return {
        "apiVersion": names.WORKSPACE_API,
        "kind": "Workspace",
        "metadata": names.meta(env, w, w.name, "inference"),
        "resource": resource(env, w, count=w.spec["placement"]["count"]),
        "inference": inference,
    }


def _strength(value: float) -> str:
    """KAITO v1beta1 keeps adapter strength as a string; write the shortest exact form."""
    return str(float(value))
