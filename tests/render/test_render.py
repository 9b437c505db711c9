"""Rendering: golden manifests for the shipped environments, the CRD schema for every
Workspace, and the bundled-engine Job's safety properties."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from infra.crd import crd_errors, is_kaito
from infra.render import config_map_name, manifest_path, render_environment, to_yaml, write_manifests, OutputDirError
from infra.specs import WORKLOADS_DIR, environments, load_environment

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
FIXTURES = HERE.parent / "fixtures" / "valid"


def _all_envs():
    yield from ((f"workloads/{e}", WORKLOADS_DIR, e) for e in environments(WORKLOADS_DIR))
    for case in sorted(os.listdir(FIXTURES)):
        yield (f"fixture/{case}", FIXTURES / case / "workloads", "dev")


ENVS = list(_all_envs())


@pytest.mark.parametrize("label,root,env", ENVS, ids=[e[0] for e in ENVS])
def test_every_rendered_kaito_object_passes_its_crd_schema_strictly(label, root, env):
    for obj in render_environment(load_environment(env, root)):
        if is_kaito(obj):
            assert crd_errors(obj) == [], f"{label}: {obj['kind']} {obj['metadata']['name']}"


def test_crd_check_catches_a_spec_wrapped_workspace():
    """KAITO Workspaces have no `spec`; a renderer that wrapped fields in one must fail."""
    obj = {"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace", "metadata": {"name": "x"},
           "resource": {"count": "one", "labelSelector": {}}, "spec": {}}
    errors = crd_errors(obj)
    assert any("count" in e for e in errors) and any("'spec' was unexpected" in e for e in errors)


@pytest.mark.parametrize("env", environments(WORKLOADS_DIR))
def test_rendered_output_matches_golden(env, tmp_path):
    objects = render_environment(load_environment(env))
    golden_dir = GOLDEN / env
    if os.environ.get("UPDATE_GOLDEN"):
        import shutil
        shutil.rmtree(golden_dir, ignore_errors=True)
        write_manifests(objects, golden_dir)
    expected = {str(p.relative_to(golden_dir)): p.read_text() for p in golden_dir.rglob("*.yaml")}
    got = {manifest_path(o): to_yaml(o) for o in objects}
    assert sorted(got) == sorted(expected), "objects differ from golden; run UPDATE_GOLDEN=1 pytest tests/render"
    for name, text in got.items():
        assert text == expected[name], f"{name} differs from golden"


def test_rendering_is_deterministic():
    env = load_environment("dev")
    assert [to_yaml(o) for o in render_environment(env)] == [to_yaml(o) for o in render_environment(env)]


def _dev_objects():
    return render_environment(load_environment("dev"))


def _find(kind: str, name: str):
    return next(o for o in _dev_objects() if o["kind"] == kind and o["metadata"]["name"] == name)


def _config_map(job: str):
    return _find("ConfigMap", config_map_name(load_environment("dev").by_name(job)))


def test_tuning_workspace_fields_are_top_level():
    ws = _find("Workspace", "phi3-dolly-qlora")
    assert "spec" not in ws and ws["tuning"]["method"] == "qlora"
    assert ws["tuning"]["output"] == {"image": "kaitogitopsdev.azurecr.io/adapters/phi3-dolly-qlora:v1",
                                      "imagePushSecret": "acr-adapter-push"}
    assert ws["tuning"]["config"] == _config_map("phi3-dolly-qlora")["metadata"]["name"]


def test_inference_adapter_resolves_to_the_tuning_jobs_image():
    ws = _find("Workspace", "phi3-dolly")
    assert ws["inference"]["adapters"] == [{"source": {"name": "phi3-dolly-qlora",
                                                       "image": "kaitogitopsdev.azurecr.io/adapters/phi3-dolly-qlora:v1",
                                                       "imagePullSecrets": ["acr-adapter-pull"]}}]


def test_training_config_has_kaitos_six_sections_and_the_hyperparameters():
    cm = _config_map("phi3-dolly-bundled")
    config = yaml.safe_load(cm["data"]["training_config.yaml"])["training_config"]
    assert list(config)[:6] == ["ModelConfig", "QuantizationConfig", "LoraConfig", "TrainingArguments",
                                "DataCollator", "DatasetConfig"]
    # The budget and checkpointing come from catalog.plan_tuning for one A100 80 GB (tests/trainer/test_plan.py).
    assert config["BundledConfig"] == {"checkpoint_dir": "/mnt/results/checkpoints", "max_seq_length": 2048,
                                       "attn_implementation": "flash_attention_2", "max_tokens_per_batch": 10240,
                                       "max_examples_per_batch": 8}
    assert config["TrainingArguments"]["gradient_checkpointing"] is False
    assert config["TrainingArguments"]["use_liger_kernel"] is True
    assert config["QuantizationConfig"]["load_in_4bit"] is True
    assert config["LoraConfig"] == {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05}
    assert config["TrainingArguments"]["per_device_train_batch_size"] == 8
    assert config["TrainingArguments"]["learning_rate"] == 2.0e-4
    assert config["TrainingArguments"]["output_dir"] == "/mnt/results"


@pytest.mark.parametrize("label,root,env", ENVS, ids=[e[0] for e in ENVS])
def test_every_rendered_training_config_is_accepted_by_the_bundled_trainer(label, root, env):
    """One ConfigMap format for both engines: our trainer must accept what we render for either."""
    from trainer.config import parse_config

    for obj in render_environment(load_environment(env, root)):
        if obj["kind"] == "ConfigMap":
            parse_config(yaml.safe_load(obj["data"]["training_config.yaml"]))


def test_kaito_engine_config_has_only_kaito_keys():
    config = yaml.safe_load(_config_map("phi3-dolly-qlora")["data"]["training_config.yaml"])
    assert set(config["training_config"]) == {"ModelConfig", "QuantizationConfig", "LoraConfig",
                                              "TrainingArguments", "DataCollator", "DatasetConfig"}
    assert "save_steps" not in config["training_config"]["TrainingArguments"]


def test_bundled_job_runs_non_root_on_the_gpu_pool_and_survives_eviction():
    job = _find("Job", "phi3-dolly-bundled")
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kaito-gitops.dev/pool": "gpua100"}
    assert {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["restartPolicy"] == "Never"
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]} in rules
    assert any(r["action"] == "FailJob" and r["onExitCodes"]["containerName"] == "trainer" for r in rules)
    trainer = next(c for c in pod["initContainers"] + pod["containers"] if c["name"] == "trainer")
    assert trainer["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert trainer["securityContext"]["allowPrivilegeEscalation"] is False
    claim = next(v for v in pod["volumes"] if v["name"] == "results")
    assert claim["persistentVolumeClaim"]["claimName"] == "phi3-dolly-bundled-checkpoints"


def test_every_object_is_labelled():
    for obj in _dev_objects():
        meta = obj["metadata"]["labels"]
        assert meta["app.kubernetes.io/part-of"] == "kaito-gitops", obj["metadata"]["name"]
        assert meta["kaito-gitops.dev/team"], obj["metadata"]["name"]


def test_write_manifests_removes_only_its_own_stale_files(tmp_path):
    objects = _dev_objects()
    write_manifests(objects, tmp_path / "out")
    stale = tmp_path / "out" / manifest_path(objects[-1])
    assert stale.exists()
    write_manifests(objects[:-1], tmp_path / "out")
    assert not stale.exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x")
    with pytest.raises(OutputDirError):
        write_manifests(objects, tmp_path / "mine")
    assert (tmp_path / "mine" / "keep.txt").exists()
