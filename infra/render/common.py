"""Pieces both Workspace kinds share: KAITO's `resource` block and a DataSource from a spec source."""

from __future__ import annotations

from typing import Any

from infra.model import Environment, Workload
from infra.render import names


def source(env: Environment, spec_source: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """A KAITO DataSource (tuning input, adapter source) from a spec data source."""
    if "urls" in spec_source:
        out: dict[str, Any] = {"urls": list(spec_source["urls"])}
    elif "image" in spec_source:
        out = image_source(env, spec_source["image"], spec_source.get("pullSecrets"))
    else:
        out = {"volumeSource": {"persistentVolumeClaim": {"claimName": spec_source["volume"]["claimName"]}}}
    if name:
        out["name"] = name
    return out


def image_source(env: Environment, image: str, pull_secrets: list[str] | None = None) -> dict[str, Any]:
    """An image DataSource with the secrets KAITO's puller authenticates with (it has no other credential)."""
    out: dict[str, Any] = {"image": image}
    secrets = names.pull_secrets(env.defaults["registry"], image, pull_secrets)
    if secrets:
        out["imagePullSecrets"] = secrets
    return out


def resource(env: Environment, w: Workload) -> dict[str, Any]:
    """KAITO's `resource` without `count`: v1beta1 deprecates it and the node estimator overwrites it. With
    kaito.nodeProvisioning byo KAITO's webhook wants no instanceType: the Workspace runs on the pool's nodes."""
    return {**instance_type(env, w), "labelSelector": names.selector(env, w)}


def instance_type(env: Environment, w: Workload) -> dict[str, Any]:
    if env.defaults["kaito"]["nodeProvisioning"] == "byo":
        return {}
    return {"instanceType": w.spec["placement"]["instanceType"]}

