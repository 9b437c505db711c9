"""Pieces both Workspace kinds share: KAITO's `resource` block and a DataSource from a spec source."""

from __future__ import annotations

from typing import Any

from infra.model import Environment, Workload
from infra.render.names import POOL_LABEL


def source(spec_source: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """A KAITO DataSource (tuning input, adapter source) from a spec data source."""
    if "urls" in spec_source:
        out: dict[str, Any] = {"urls": list(spec_source["urls"])}
    elif "image" in spec_source:
        out = {"image": spec_source["image"]}
        if spec_source.get("pullSecrets"):
            out["imagePullSecrets"] = list(spec_source["pullSecrets"])
    else:
        out = {"volumeSource": {"persistentVolumeClaim": {"claimName": spec_source["volume"]["claimName"]}}}
    if name:
        out["name"] = name
    return out


def resource(env: Environment, w: Workload, count: int | None = None) -> dict[str, Any]:
    """auto: KAITO provisions nodes of `instanceType` labelled for this Workspace; byo: KAITO's webhook
    wants no instanceType and the Workspace runs on the stack's GPU pool, selected by its label."""
    if env.defaults["kaito"]["nodeProvisioning"] == "byo":
        out: dict[str, Any] = {"labelSelector": {"matchLabels": {POOL_LABEL: env.defaults["nodePool"]}}}
    else:
        out = {"instanceType": w.spec["placement"]["instanceType"], "labelSelector": {"matchLabels": {"apps": w.name}}}
    if count is not None:
        out["count"] = count
    return out

