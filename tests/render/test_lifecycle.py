"""Node provisioning per environment, retired jobs, content-addressed training ConfigMaps, and the
fields KAITO or Kubernetes refuse to change in place."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from infra.lifecycle import replaced_fields
from infra.render import config_map_name, render_environment
from infra.render.names import KAITO_COMMIT, POOL_LABEL, SYNC_WAVE
from infra.specs import load_environment

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "valid"
KAITO_GIT = Path("/work/.mirror/kaito-project+kaito/repo")  # kaito-project/kaito's history, where present


def _objects(case: str):
    return render_environment(load_environment("dev", FIXTURES / case / "workloads"))


def test_byo_workspaces_select_the_pool_and_name_no_instance_type():
    """KAITO's webhook wants no instanceType when node auto-provisioning is off (workspace_validation.go)."""
    (serving,) = [o for o in _objects("retired-job-and-byo-serving") if o["kind"] == "Workspace"]
    assert "instanceType" not in serving["resource"]
    assert serving["resource"]["labelSelector"] == {"matchLabels": {POOL_LABEL: "gpua100"}}


def test_auto_workspaces_name_their_instance_type_for_kaitos_node_claims():
    for obj in render_environment(load_environment("dev")):
        if obj["kind"] == "Workspace":
            assert obj["resource"]["instanceType"] == "Standard_NC24ads_A100_v4"


def test_a_retired_job_renders_nothing_but_its_adapter_is_still_served():
    objects = _objects("retired-job-and-byo-serving")
    assert not [o for o in objects if o["metadata"]["name"].startswith("old")]
    (serving,) = [o for o in objects if o["kind"] == "Workspace"]
    images = [a["source"]["image"] for a in serving["inference"]["adapters"]]
    assert images == ["kaitogitopsdev.azurecr.io/adapters/old:v1", "kaitogitopsdev.azurecr.io/adapters/current:v1"]


def test_training_configmaps_are_named_by_their_content_and_applied_first_by_argo():
    env = load_environment("dev")
    for w in env.workloads:
        if w.kind != "TuningJob":
            continue
        name = config_map_name(w)
        (config_map,) = [o for o in render_environment(env) if o["metadata"]["name"] == name]
        prefix = f"{w.name}-training-config-"
        assert name.startswith(prefix) and len(name) == len(prefix) + 10
        assert config_map["metadata"]["annotations"] == {SYNC_WAVE: "-1"}


def test_two_jobs_with_different_configs_never_share_a_configmap_name():
    env = load_environment("dev")
    names = {config_map_name(w) for w in env.workloads if w.kind == "TuningJob"}
    assert len(names) == 2


WORKSPACE = {"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace", "metadata": {"name": "w"},
             "resource": {"instanceType": "Standard_NC24ads_A100_v4", "labelSelector": {"matchLabels": {"apps": "w"}}},
             "tuning": {"preset": {"name": "phi-3-mini-128k-instruct"}, "method": "qlora", "config": "c-1",
                        "input": {"name": "w-data", "urls": ["https://example.com/a"]}}}


@pytest.mark.parametrize("path,value,expected", [
    (("tuning", "config"), "c-2", []),
    (("tuning", "input", "urls"), ["https://example.com/b"], []),
    (("tuning", "method"), "lora", ["tuning.method"]),
    (("tuning", "input", "name"), "other", ["tuning.input.name"]),
    (("resource", "instanceType"), "Standard_NC48ads_A100_v4", ["resource.instanceType"]),
    (("resource", "labelSelector"), {"matchLabels": {"apps": "x"}}, ["resource.labelSelector"]),
])
def test_workspace_fields_kaitos_webhook_refuses_to_update(path, value, expected):
    import copy

    new = copy.deepcopy(WORKSPACE)
    node = new
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert replaced_fields(WORKSPACE, new) == expected


def test_a_workspace_cannot_switch_between_tuning_and_inference():
    serving = {k: v for k, v in WORKSPACE.items() if k != "tuning"} | {"inference": {"preset": {"name": "p"}}}
    assert replaced_fields(WORKSPACE, serving) == ["tuning", "inference"]


# The rules above, read back from KAITO's source at the pinned commit (skipped where it is not on the machine).
@pytest.mark.parametrize("path,needles", [
    # Workspace updates KAITO's webhook refuses: the fields infra.lifecycle calls immutable.
    ("api/v1beta1/workspace_validation.go", [
        'ErrGeneric("instanceType cannot be changed once set when node auto-provisioning is enabled", "instanceType")',
        'errs = errs.Also(apis.ErrGeneric("field is immutable", "labelSelector"))',
        'errs = errs.Also(apis.ErrGeneric("field is immutable", "count"))',
        'ErrGeneric("Preset cannot be changed", "Preset")', 'ErrGeneric("Method cannot be changed", "Method")',
        '"During tuning Name field cannot be changed once set"',
        'ErrGeneric("Inference field cannot be toggled once set", "inference")',
        'ErrGeneric("Tuning field cannot be toggled once set", "tuning")',
        '"instanceType must be empty when node auto-provisioning is disabled (BYO scenario)"']),
    # The revision hash: resource, inference and tuning only; a new revision recreates the tuning Job.
    ("pkg/workspace/controllers/workspace_controller.go", [
        "encoder.Encode(w.Resource)\n\tencoder.Encode(w.Inference)\n\tencoder.Encode(w.Tuning)",
        "if existingObj.Annotations[kaitov1beta1.WorkspaceRevisionAnnotation] == revisionNum {"]),
    # The ConfigMap must exist when the tuning Workspace is admitted.
    ("api/v1beta1/tuning_config_validation.go", ["specified in 'config' not found in namespace"]),
    # Tuning sizes its GPUs from instanceType, which BYO Workspaces may not have.
    ("pkg/workspace/tuning/preset_tuning.go", ["sku.GetGPUConfigBySKU(workspaceObj.Resource.InstanceType)"]),
    # KAITO's nodes stay until the Workspace goes.
    ("pkg/utils/nodeclaim/nodeclaim.go", ["karpenterv1.DoNotDisruptAnnotationKey: \"true\""]),
    ("pkg/workspace/controllers/workspace_gc_finalizer.go", ["c.nodeProvisioner.DeleteNodes(ctx, wObj)"]),
])
def test_lifecycle_rules_match_kaitos_source(path, needles):
    if not (KAITO_GIT / "HEAD").exists():
        pytest.skip(f"KAITO's source is not on this machine ({KAITO_GIT})")
    source = subprocess.run(["git", "-C", str(KAITO_GIT), "show", f"{KAITO_COMMIT}:{path}"], check=True,
                            capture_output=True, text=True).stdout
    for needle in needles:
        assert needle in source, f"{path} no longer says {needle!r}: re-check infra/lifecycle.py and docs/rendering.md"
