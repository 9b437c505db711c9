"""Check rendered Workspaces against KAITO's own CRD schema (vendored).

The API server validates custom resources with the CRD's openAPIV3Schema; doing
the same here means a renderer bug shows up in CI, not as a rejected apply.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft7Validator

from infra import catalog


def _to_json_schema(node: Any) -> Any:
    """OpenAPI v3 → JSON Schema: `nullable` becomes a null type; x-kubernetes-* keywords are ignored by jsonschema."""
    if isinstance(node, dict):
        out = {k: _to_json_schema(v) for k, v in node.items()}
        if out.pop("nullable", False) and "type" in out:
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_to_json_schema(v) for v in node]
    return node


@cache
def _validator(version: str) -> Draft7Validator:
    return Draft7Validator(_to_json_schema(catalog.workspace_crd_schema(version)))


def workspace_errors(obj: dict[str, Any]) -> list[str]:
    """Every way `obj` breaks the Workspace CRD schema of its apiVersion, as `$.path: message`."""
    version = obj.get("apiVersion", "").rsplit("/", 1)[-1]
    return [f"{e.json_path}: {e.message}" for e in _validator(version).iter_errors(obj)]
