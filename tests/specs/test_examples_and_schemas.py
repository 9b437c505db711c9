"""The shipped examples tell the walk-through story and validate; the schemas are usable by editors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from infra import catalog
from infra.schemas import SCHEMAS_DIR
from infra.specs import SCHEMA_FILES, WORKLOADS_DIR, load_environment

DOLLY = ("https://huggingface.co/datasets/philschmid/dolly-15k-oai-style/resolve/main/data/"
         "train-00000-of-00001-54e3756291ca09c6.parquet")
EXAMPLES = sorted(WORKLOADS_DIR.rglob("*.yaml"))


def test_dev_tells_the_walk_through() -> None:
    env = load_environment("dev")
    assert env.defaults["registry"] == "kaitogitopsdev.azurecr.io"
    job = env.by_name("phi3-dolly-qlora")
    assert job.spec["engine"] == "kaito" and job.spec["method"] == "qlora"
    assert job.spec["baseModel"] == "phi-3-mini-128k-instruct"
    assert job.spec["data"]["train"]["urls"] == [DOLLY]
    # Defaults applied: the renderer gets a complete spec.
    assert job.spec["quantization"] == "4bit"
    assert job.spec["output"]["image"]["pushSecret"] == env.defaults["pushSecret"]
    assert job.spec["placement"] == {"instanceType": "Standard_NC24ads_A100_v4", "nodePool": env.defaults["nodePool"]}
    serve = env.by_name("phi3-dolly")
    assert serve.spec["preset"] == job.spec["baseModel"]
    assert serve.spec["adapters"] == [{"tuningJob": "phi3-dolly-qlora", "name": "phi3-dolly-qlora"}]
    assert (serve.spec["runtime"], serve.spec["replicas"]) == ("vllm", 1)
    assert any(w.spec.get("engine") == "bundled" for w in env.workloads)
    assert {w.namespace for w in env.workloads} == {"ml-platform"}


def test_prod_has_its_own_registry_and_a_workload() -> None:
    env = load_environment("prod")
    assert env.defaults["registry"] == "kaitogitopsprod.azurecr.io"
    assert env.workloads


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(WORKLOADS_DIR)))
def test_every_example_names_its_schema_for_editors(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert match, f"{path}: first line must be the yaml-language-server schema comment"
    schema = (path.parent / match.group(1)).resolve()
    kind = yaml.safe_load(path.read_text(encoding="utf-8"))["kind"]
    assert schema == (SCHEMAS_DIR / SCHEMA_FILES[kind]).resolve()


def _objects(schema, where="#"):
    """Every sub-schema that declares properties, with where it is."""
    if isinstance(schema, dict):
        if "properties" in schema:
            yield where, schema
        for key, value in schema.items():
            yield from _objects(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from _objects(value, f"{where}/{i}")


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES.values()))
def test_schemas_are_strict_documented_draft_2020_12(name: str) -> None:
    schema = json.loads((SCHEMAS_DIR / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for where, obj in _objects(schema):
        assert obj.get("additionalProperties") is False, f"{name} {where}: additionalProperties must be false"
        for prop, sub in obj["properties"].items():
            assert "description" in sub or "$ref" in sub or prop in ("apiVersion", "kind"), \
                f"{name} {where}/properties/{prop}: no description"


def test_catalog_knows_the_issue_skus_and_tuning_presets() -> None:
    for name, gpus, gib in [("Standard_NC24ads_A100_v4", 1, 80), ("Standard_NC48ads_A100_v4", 2, 80),
                            ("Standard_NC96ads_A100_v4", 4, 80),
                            ("Standard_ND96amsr_A100_v4", 8, 80), ("Standard_NC40ads_H100_v5", 1, 94),
                            ("Standard_NC80adis_H100_v5", 2, 94), ("Standard_ND96isr_H100_v5", 8, 80),
                            ("Standard_NV36ads_A10_v5", 1, 24)]:
        sku = catalog.sku(name)
        assert (sku.gpus, sku.gpu_memory_gib) == (gpus, gib), name
    assert catalog.sku("Standard_NC64as_T4_v3") is None  # KAITO dropped GPUs below CUDA 8.0
    assert catalog.sku("Standard_NC99_Z100") is None
    assert "phi-3-mini-128k-instruct" in catalog.tuning_presets()
    assert catalog.preset("llama-3.1-8b-instruct").tuning is False  # in KAITO, but no tuning support
    assert set(catalog.tuning_presets()) <= set(catalog.supported_presets())
