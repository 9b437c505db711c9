"""What the renderer writes for KAITO v0.12 (runtime, adapters, pull secrets, replicas, SKUs), and strict
schema validity of everything rendered: Kubernetes' own schemas for standard objects, KAITO's CRDs
(unknown fields refused, as the API server would prune them) for KAITO objects."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from infra import catalog
from infra.crd import crd_errors, is_kaito
from infra.kaito_rules import tuning_config_map_errors
from infra.render import names, render_environment
from infra.specs import REPO_ROOT, WORKLOADS_DIR, environments, load_environment

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "valid"
KAITO_REPO = Path("/work/.mirror/kaito-project+kaito/repo")  # KAITO's git history, where present
KAITO_COMMIT = "056b8280b1a8debf644bc6f4399e913a1f9c7e70"


def _kubernetes_version() -> str:
    """The AKS minor version the stacks run (Pulumi.<stack>.yaml), so schemas match the cluster."""
    versions = {yaml.safe_load(p.read_text())["config"]["kaito-gitops:kubernetesVersion"]
                for p in REPO_ROOT.glob("Pulumi.*.yaml")}
    assert len(versions) == 1, versions
    return str(versions.pop())


def _rendered():
    for env in environments(WORKLOADS_DIR):
        yield f"workloads/{env}", render_environment(load_environment(env))
    for case in sorted(p.name for p in FIXTURES.iterdir()):
        yield f"fixture/{case}", render_environment(load_environment("dev", FIXTURES / case / "workloads"))


RENDERED = list(_rendered())


@pytest.mark.parametrize("label,objects", RENDERED, ids=[r[0] for r in RENDERED])
def test_every_standard_object_passes_kubernetes_strict_schemas(label, objects):
    version = _kubernetes_version()
    standard = [o for o in objects if not is_kaito(o)]
    assert standard
    for obj in standard:
        kubernetes_validate.validate(obj, version, strict=True)


def test_strict_kubernetes_schemas_catch_what_the_api_server_would_drop_or_refuse():
    """The check can fail: an unknown field, and the podFailurePolicy condition without its type.

    (Kubernetes 1.36 no longer requires the condition's `status`; `type` stays required.)"""
    job = next(o for o in render_environment(load_environment("dev")) if o["kind"] == "Job")
    unknown = copy.deepcopy(job)
    unknown["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # typo of `resources`
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(unknown, _kubernetes_version(), strict=True)
    no_type = copy.deepcopy(job)
    conditions = [c for rule in no_type["spec"]["podFailurePolicy"]["rules"] for c in rule.get("onPodConditions", [])]
    assert conditions, "the bundled Job's podFailurePolicy matches on a pod condition"
    for condition in conditions:
        del condition["type"]
    with pytest.raises(kubernetes_validate.ValidationError, match="type"):
        kubernetes_validate.validate(no_type, _kubernetes_version(), strict=True)


def test_crd_check_refuses_fields_the_api_server_would_prune():
    ws = next(o for o in render_environment(load_environment("dev")) if o["kind"] == "Workspace")
    assert crd_errors(ws) == []
    pruned = copy.deepcopy(ws)
    pruned["resource"]["nodeCount"] = 2  # not declared: the API server would drop it silently
    assert any("nodeCount" in e for e in crd_errors(pruned))
    meta = copy.deepcopy(ws)
    meta["metadata"]["finalizer"] = ["x"]
    assert any("finalizer" in e for e in crd_errors(meta))
    assert crd_errors({**ws, "apiVersion": "kaito.sh/v9"}) == ["$.apiVersion: KAITO's Workspace CRD serves no version 'v9'"]


def test_crd_check_validates_inference_sets_against_kaitos_crd():
    iset = next(o for o in render_environment(load_environment("prod")) if o["kind"] == "InferenceSet")
    assert crd_errors(iset) == []
    broken = copy.deepcopy(iset)
    del broken["spec"]["labelSelector"]
    broken["spec"]["template"]["resource"]["count"] = 2  # not in the InferenceSet template
    errors = crd_errors(broken)
    assert any("labelSelector" in e for e in errors) and any("count" in e for e in errors)


def _objects(label: str):
    return next(objects for name, objects in RENDERED if name == label)


def _by_kind(label: str, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in _objects(label) if o["kind"] == kind}


def test_vllm_workspace_writes_the_runtime_and_no_strength_or_count():
    ws = _by_kind("workloads/dev", "Workspace")["phi3-dolly"]
    assert ws["metadata"]["annotations"] == {names.RUNTIME_ANNOTATION: "vllm"}
    assert all("strength" not in a for a in ws["inference"]["adapters"])
    assert "count" not in ws["resource"]


def test_transformers_runtime_writes_the_annotation_and_each_strength():
    ws = _by_kind("fixture/continue-and-serve", "Workspace")["serve"]
    assert ws["metadata"]["annotations"] == {"kaito.sh/runtime": "transformers"}
    assert [(a["source"]["name"], a.get("strength")) for a in ws["inference"]["adapters"]] == [
        ("first", "0.5"), ("second", None), ("external", "1.0")]


def test_more_than_one_replica_renders_an_inference_set_that_carries_the_runtime():
    prod = _by_kind("workloads/prod", "InferenceSet")["phi3-support"]
    assert prod["spec"]["replicas"] == 2
    template = prod["spec"]["template"]
    assert template["metadata"]["annotations"] == {"kaito.sh/runtime": "transformers"}
    assert template["inference"]["adapters"][0]["strength"] == "0.8"
    assert "phi3-support" not in _by_kind("workloads/prod", "Workspace")
    assert _by_kind("fixture/private-images", "InferenceSet")["serve"]["spec"]["replicas"] == 3


def _image_sources(obj: dict) -> list[dict]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "image" in node and isinstance(node["image"], str) and "imagePushSecret" not in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk({k: v for k, v in obj.items() if k != "metadata"})
    return found


@pytest.mark.parametrize("label,objects", RENDERED, ids=[r[0] for r in RENDERED])
def test_every_kaito_image_source_in_our_registry_carries_the_read_secret(label, objects):
    """KAITO's puller authenticates only with imagePullSecrets (pkg/workspace/manifests/manifests.go)."""
    for obj in objects:
        if not is_kaito(obj):
            continue
        registry = {"dev": "kaitogitopsdev.azurecr.io/", "prod": "kaitogitopsprod.azurecr.io/"}[
            obj["metadata"]["labels"]["kaito-gitops.dev/environment"]]
        for source in _image_sources(obj):
            if source["image"].startswith(registry):
                assert source.get("imagePullSecrets") == [names.PULL_SECRET], (label, source)


def test_images_elsewhere_keep_their_own_secrets_or_none():
    sources = {s["name"]: s for s in _image_sources(_by_kind("fixture/private-images", "InferenceSet")["serve"])}
    assert sources["partner"]["imagePullSecrets"] == ["partner-read"]
    assert "imagePullSecrets" not in sources["public"]
    tuning = _by_kind("fixture/private-images", "Workspace")["tune"]["tuning"]
    assert tuning["input"]["imagePullSecrets"] == [names.PULL_SECRET]
    assert tuning["output"]["imagePushSecret"] == "acr-adapter-push" != names.PULL_SECRET


def test_sku_table_holds_no_gpu_kaito_dropped():
    gpus = {catalog.sku(n).gpu for n in catalog.gpu_skus()}
    assert not gpus & {"T4", "V100", "M60", "K80", "P100"}
    assert all(catalog.sku(n).cuda >= 8.0 for n in catalog.gpu_skus() if catalog.sku(n).gpu != "V620")


def _kaito_file(path: str) -> str:
    if not (KAITO_REPO / "objects").is_dir() and not (KAITO_REPO / "HEAD").exists():
        pytest.skip(f"KAITO's source is not on this machine ({KAITO_REPO})")
    return subprocess.run(["git", "-C", str(KAITO_REPO), "show", f"{KAITO_COMMIT}:{path}"],
                          check=True, capture_output=True, text=True).stdout


def test_sku_table_matches_kaitos_azure_sku_handler():
    """Names, GPU count and GPU memory, row by row, against pkg/sku/azure_sku_handler.go at the pinned commit."""
    source = _kaito_file("pkg/sku/azure_sku_handler.go")
    rows = {m["sku"]: (int(m["count"]), int(m["mem"]))
            for m in re.finditer(r'^\s*\{SKU: "(?P<sku>[^"]+)", GPUCount: (?P<count>\d+), '
                                 r'GPUMem: resource.MustParse\("(?P<mem>\d+)Gi"\)', source, re.M)}
    assert len(rows) == 14
    # Not an Azure size name (Azure: Standard_ND96asr_v4), so no Workspace can use it; see data/skus.yaml.
    rows.pop("Standard_ND96asr_A100_v4")
    ours = {n: (catalog.sku(n).gpus, int(catalog.sku(n).total_gpu_memory_gib)) for n in catalog.gpu_skus()}
    assert ours == rows


# KAITO's Hugging Face model names that differ from the preset name (pkg/utils/plugin/plugin.go).
CATALOG_ALIASES = {"mistral-7b-v0.3": "mistral-7b", "mistral-7b-instruct-v0.3": "mistral-7b-instruct",
                   "gemma-3-4b-it": "gemma-3-4b-instruct", "gemma-3-27b-it": "gemma-3-27b-instruct"}


def _map_keys(path: str) -> set[str]:
    """The preset names a Go map literal in KAITO is keyed by (commented-out entries start with //)."""
    keys = re.findall(r'^\t"([a-z0-9.-]+)": \{', _kaito_file(path), re.M)
    return {CATALOG_ALIASES.get(k, k) for k in keys}


def test_transformers_presets_match_kaitos_transformers_parameters():
    keys = _map_keys("presets/workspace/models/transformer_runtime_inference_parameters.go")
    assert keys == set(catalog.transformers_presets())
    assert set(catalog.transformers_presets()) <= set(catalog.supported_presets())


def test_tuning_presets_match_kaitos_tuning_parameters():
    assert _map_keys("presets/workspace/models/transformer_runtime_tuning_parameters.go") == set(catalog.tuning_presets())


@pytest.mark.parametrize("label,objects", RENDERED, ids=[r[0] for r in RENDERED])
def test_every_kaito_tuning_workspace_references_a_config_map_kaitos_webhook_accepts(label, objects):
    config_maps = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects if o["kind"] == "ConfigMap"}
    for ws in (o for o in objects if o["kind"] == "Workspace" and "tuning" in o):
        config_map = config_maps[(ws["metadata"]["namespace"], ws["tuning"]["config"])]
        assert tuning_config_map_errors(config_map, ws["tuning"]["method"]) == [], (label, ws["metadata"]["name"])


def test_kaitos_config_map_rules_refuse_our_trainers_section_and_a_method_mismatch():
    objects = _objects("workloads/dev")
    bundled = next(o for o in objects if o["kind"] == "ConfigMap" and "bundled" in o["metadata"]["name"])
    assert "Unrecognized section: BundledConfig" in tuning_config_map_errors(bundled, "qlora")
    kaito = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("phi3-dolly-qlora"))
    assert tuning_config_map_errors(kaito, "lora") == ["method lora with load_in_4bit true"]
    outside = copy.deepcopy(kaito)
    outside["data"]["training_config.yaml"] = outside["data"]["training_config.yaml"].replace(
        "output_dir: /mnt/results", "output_dir: ../etc")
    assert tuning_config_map_errors(outside, "qlora") == ["output_dir '../etc' is not a directory under /mnt"]


@pytest.mark.parametrize("label,objects", RENDERED, ids=[r[0] for r in RENDERED])
def test_no_rendered_workspace_sets_count(label, objects):
    """v1beta1 deprecates resource.count (KAITO's estimator decides); tuning must stay at its default of 1."""
    for obj in objects:
        if obj["kind"] == "Workspace":
            assert "count" not in obj["resource"], (label, obj["metadata"]["name"])
        if obj["kind"] == "InferenceSet":
            assert "count" not in obj["spec"]["template"]["resource"], label


def test_preset_names_are_exactly_those_kaitos_webhook_accepts():
    source = _kaito_file("pkg/utils/plugin/plugin.go")
    table = source.split("var LegacyBuiltinToCatalog = map[string]string{", 1)[1].split("}", 1)[0]
    assert set(re.findall(r'^\t"([a-z0-9.-]+)":', table, re.M)) == set(catalog.supported_presets())
    assert catalog.preset("phi-2") is None and catalog.preset("falcon-7b") is None  # in supported_models.yaml only


def test_an_inference_set_on_byo_nodes_selects_the_pool_and_names_no_instance_type():
    """KAITO's InferenceSet webhook refuses instanceType on BYO nodes (inferenceset_validation.go
    validateInstanceType); the set's labelSelector becomes each replica's node selector."""
    iset = _by_kind("fixture/byo-replicas", "InferenceSet")["serve"]
    assert iset["spec"]["template"]["resource"] == {}
    assert iset["spec"]["labelSelector"] == {"matchLabels": {names.POOL_LABEL: "gpua100"}}
    auto = _by_kind("workloads/prod", "InferenceSet")["phi3-support"]
    assert auto["spec"]["template"]["resource"] == {"instanceType": "Standard_NC24ads_A100_v4"}
    assert auto["spec"]["labelSelector"] == {"matchLabels": {"apps": "phi3-support"}}
