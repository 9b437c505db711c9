"""Check rendered KAITO objects (Workspace, InferenceSet) against KAITO's own CRD schemas (vendored).

The API server validates a custom resource with its CRD's openAPIV3Schema and then silently prunes
every field the schema does not declare (structural schemas, apiextensions.k8s.io/v1), unless the
node says `x-kubernetes-preserve-unknown-fields`. A pruned field is a setting that quietly does
nothing, so here an undeclared field is an error: every object node without that marker gets
`additionalProperties: false`. `metadata` is checked separately: the API server treats it as
ObjectMeta, which the CRD does not describe.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft7Validator

from infra import catalog

KAITO_GROUP = "kaito.sh"
# The ObjectMeta fields a rendered object may set; anything else is a renderer bug.
METADATA_SCHEMA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def _strict(node: Any) -> Any:
    """OpenAPI v3 (structural) -> JSON Schema that refuses what the API server would prune.

    `nullable` becomes a null type; x-kubernetes-* keywords other than preserve-unknown-fields are
    ignored by jsonschema."""
    if isinstance(node, list):
        return [_strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: (_strict(v) if k not in ("properties", "enum", "default", "example") else v)
           for k, v in node.items()}
    if "properties" in node:
        out["properties"] = {k: _strict(v) for k, v in node["properties"].items()}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if (out.get("type") == "object" and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@cache
def _validator(kind: str, version: str) -> Draft7Validator | None:
    schema = catalog.crd_schema(kind, version)
    if schema is None:
        return None
    schema = _strict(schema)
    schema["properties"]["metadata"] = METADATA_SCHEMA
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    return Draft7Validator(schema)


def crd_errors(obj: dict[str, Any]) -> list[str]:
    """Every way `obj` breaks the CRD schema of its kind and apiVersion, as `$.path: message`."""
    group, _, version = obj.get("apiVersion", "").rpartition("/")
    kind = obj.get("kind")
    if group != KAITO_GROUP or kind not in catalog.CRD_FILES:
        return [f"$.kind: {kind!r} of {obj.get('apiVersion')!r} is not a KAITO kind this repo vendors"]
    validator = _validator(kind, version)
    if validator is None:
        return [f"$.apiVersion: KAITO's {kind} CRD serves no version {version!r}"]
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(obj)]


def is_kaito(obj: dict[str, Any]) -> bool:
    return obj.get("apiVersion", "").startswith(KAITO_GROUP + "/")
