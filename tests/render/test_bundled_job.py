"""The bundled Job against KAITO's mechanics (docs/rendering.md, "The bundled engine's Job"): weights pulled
as KAITO's tuning pod pulls them into the directory the trainer reads, credentials on every registry call,
the Spot taint tolerated, Pulumi not waiting for training, and an unchanged Job staying byte-identical."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from infra import catalog
from infra.render import bundled, names, render_environment, to_yaml
from infra.specs import load_environment

JOB = "phi3-dolly-bundled"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dev():
    return load_environment("dev")


def _job(env) -> dict:
    return next(o for o in render_environment(env) if o["kind"] == "Job" and o["metadata"]["name"] == JOB)


def _containers(job: dict) -> list[dict]:
    pod = job["spec"]["template"]["spec"]
    return pod["initContainers"] + pod["containers"]


def _named(job: dict, name: str) -> dict:
    return next(c for c in _containers(job) if c["name"] == name)


def test_weights_are_pulled_as_kaitos_tuning_pod_pulls_them(dev):
    puller = _named(_job(dev), "model-weights")
    assert puller["image"] == "mcr.microsoft.com/oss/v2/oras-project/oras:v1.2.3"
    assert puller["command"] == ["oras", "pull"]
    args = puller["args"]
    assert args[args.index("--output") + 1] == bundled.MOUNTS["weights"]
    assert args[args.index("--") + 1:] == ["mcr.microsoft.com/aks/kaito/kaito-phi-3-mini-128k-instruct:0.2.0"]
    assert {"name": "weights", "mountPath": bundled.MOUNTS["weights"]} in puller["volumeMounts"]


def test_every_tuning_preset_is_an_oci_artifact():
    """oras pull works only for presets whose weights KAITO ships as artifacts (tag 0.2.0 on)."""
    models = {m["name"]: m for m in yaml.safe_load(
        (catalog.DATA / "kaito" / "supported_models.yaml").read_text())["models"]}
    for name in catalog.tuning_presets():
        assert not models[name].get("downloadAtRuntime"), name
        assert tuple(int(x) for x in str(models[name]["tag"]).split(".")) >= (0, 2, 0), name


def test_the_trainer_reads_the_weights_where_they_are_pulled(dev):
    from trainer.config import DEFAULT_WEIGHTS_PATH, parse_config

    objects = render_environment(dev)
    config_map = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] ==
                      names.config_map_name(dev.by_name(JOB)))
    cfg = parse_config(yaml.safe_load(config_map["data"]["training_config.yaml"]))
    assert cfg.model.pretrained_model_name_or_path == DEFAULT_WEIGHTS_PATH == bundled.MOUNTS["weights"]
    trainer = _named(_job(dev), "trainer")
    assert {"name": "weights", "mountPath": DEFAULT_WEIGHTS_PATH, "readOnly": True} in trainer["volumeMounts"]


def test_every_registry_call_has_credentials_from_a_mounted_secret(dev):
    job = _job(dev)
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    calls = [c for c in _containers(job) if c.get("command", [""])[0] == "oras"]
    assert {c["name"] for c in calls} == {"model-weights", "push-adapter"}
    for container in calls:
        path = container["args"][container["args"].index("--registry-config") + 1]
        mount = next(m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
        volume = volumes[mount["name"]]
        files = ([i["path"] for s in volume["projected"]["sources"] for i in s["secret"]["items"]]
                 if "projected" in volume else [i["path"] for i in volume["secret"]["items"]])
        assert path[len(mount["mountPath"]) + 1:] in files, container["name"]
    pulled = [s["secret"]["name"] for s in volumes["registry-pull"]["projected"]["sources"]]
    assert pulled == [names.PULL_SECRET]
    assert volumes["registry-push"]["secret"]["secretName"] == "acr-adapter-push"


def test_data_and_continue_from_images_are_pulled_with_the_read_secret_and_their_own(dev):
    w = dev.by_name(JOB)
    spec = copy.deepcopy(w.spec)
    spec["data"]["train"] = {"image": "partner.example.com/data:v1", "pullSecrets": ["partner-read"]}
    spec["continueFrom"] = {"image": "kaitogitopsdev.azurecr.io/adapters/old:v1"}
    job = bundled.job(dev, dataclasses.replace(w, spec=spec), {})
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert [s["secret"]["name"] for s in volumes["registry-pull"]["projected"]["sources"]] == [
        names.PULL_SECRET, "partner-read"]
    for name, image in (("fetch-train-data", "partner.example.com/data:v1"),
                        ("pull-previous-adapter", "kaitogitopsdev.azurecr.io/adapters/old:v1")):
        puller = _named(job, name)
        assert puller["command"] == ["/bin/sh", "-c", bundled.PULL_IMAGE_SCRIPT, "pull-image"]
        assert puller["args"][0] == image and puller["args"][2] == bundled.PULL_AUTH_DIR
        assert {"name": "registry-pull", "mountPath": bundled.PULL_AUTH_DIR, "readOnly": True} in puller["volumeMounts"]


def test_job_tolerates_spot_nodes(dev):
    tolerations = _job(dev)["spec"]["template"]["spec"]["tolerations"]
    assert {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
            "effect": "NoSchedule"} in tolerations


def test_pulumi_does_not_wait_for_training(dev):
    assert _job(dev)["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}


def test_a_finished_job_is_not_garbage_collected(dev):
    """A Job Kubernetes deletes after it finishes would be re-created (and train again) by the next
    `pulumi up --refresh`; it stays until the spec is retired."""
    assert "ttlSecondsAfterFinished" not in _job(dev)["spec"]


def test_an_unchanged_job_stays_byte_identical_when_others_change(dev):
    before = to_yaml(_job(dev))
    others = [dataclasses.replace(w, spec={**w.spec, "hyperparameters": {**w.spec.get("hyperparameters", {}),
                                                                          "epochs": 7}})
              if w.name != JOB and w.kind == "TuningJob" else w for w in dev.workloads]
    assert others != dev.workloads
    assert to_yaml(_job(dataclasses.replace(dev, workloads=others))) == before


SHAPES = [
    {"data": {"train": {"volume": {"claimName": "d"}}, "validation": {"urls": ["https://h/v.jsonl"]}},
     "output": {"volume": {"claimName": "out"}}},
    {"data": {"train": {"image": "r.example.com/d:1", "pullSecrets": ["r-read"]},
              "validation": {"image": "r.example.com/v:1"}},
     "continueFrom": {"image": "kaitogitopsdev.azurecr.io/adapters/old:v1"}},
]


@pytest.mark.parametrize("shape", SHAPES, ids=["volumes", "images"])
def test_every_job_shape_is_strictly_valid_with_one_volume_per_mount_path(dev, shape):
    import kubernetes_validate

    w = dev.by_name(JOB)
    job = bundled.job(dev, dataclasses.replace(w, spec={**w.spec, **shape}), {})
    for container in _containers(job):
        paths = [m["mountPath"] for m in container["volumeMounts"]]
        assert len(paths) == len(set(paths)), (container["name"], paths)
    version = str(yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())["config"]["kaito-gitops:kubernetesVersion"])
    kubernetes_validate.validate(job, version, strict=True)


SOURCES = {"urls": {"urls": ["https://h/d.jsonl"]}, "image": {"image": "r.example.com/d:1"},
           "volume": {"volume": {"claimName": "d"}}}


@pytest.mark.parametrize("validation", [*SOURCES, None])
@pytest.mark.parametrize("train", SOURCES)
def test_no_mount_sits_inside_a_read_only_one_and_the_trainer_reads_validation_where_it_lands(dev, train, validation):
    """A data volume is mounted read-only; a mount inside it cannot get its mount point and the container does
    not start (kubernetes/kubernetes#121294). Validation data downloaded next to a read-only training volume
    must land in a writable emptyDir of its own, where the rendered config points the trainer."""
    from infra.render import tuning

    w = dev.by_name(JOB)
    data = {"train": SOURCES[train], **({"validation": SOURCES[validation]} if validation else {})}
    w = dataclasses.replace(w, spec={**w.spec, "data": data})
    job = bundled.job(dev, w, {})
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    for container in _containers(job):
        mounts = container["volumeMounts"]
        for outer in (m for m in mounts if m.get("readOnly")):
            inside = [m["mountPath"] for m in mounts if m["mountPath"].startswith(outer["mountPath"].rstrip("/") + "/")]
            assert not inside, (container["name"], outer["mountPath"], inside)
    config = tuning.training_config(w)["training_config"]["BundledConfig"]
    if validation is None:
        assert "validation_path" not in config
        return
    assert config["validation_path"] == tuning.VALIDATION_DIR
    trainer_mount = next(m for m in _named(job, "trainer")["volumeMounts"] if m["mountPath"] == tuning.VALIDATION_DIR)
    assert trainer_mount["readOnly"] is True  # the trainer only reads it, whichever source filled it
    volume = volumes[trainer_mount["name"]]
    if validation == "volume":
        assert volume["persistentVolumeClaim"] == {"claimName": "d", "readOnly": True}
    else:  # filled by an init container, which mounts it writable
        assert volume == {"name": trainer_mount["name"], "emptyDir": {}}
        fetcher = _named(job, "fetch-validation-data")
        assert {"name": trainer_mount["name"], "mountPath": tuning.VALIDATION_DIR} in fetcher["volumeMounts"]


@pytest.mark.parametrize("validation", [True, False], ids=["validation", "train-only"])
def test_the_adapters_data_hash_covers_every_data_directory_the_trainer_reads(dev, validation):
    from infra.render import tuning

    w = dev.by_name(JOB)
    data = {"train": SOURCES["urls"], **({"validation": SOURCES["image"]} if validation else {})}
    job = bundled.job(dev, dataclasses.replace(w, spec={**w.spec, "data": data}), {})
    read = [m["mountPath"] for m in _named(job, "trainer")["volumeMounts"]
            if m["mountPath"] in (bundled.MOUNTS["data"], tuning.VALIDATION_DIR)]
    hashed = [a.removeprefix("--data=") for a in _named(job, "package-adapter")["args"] if a.startswith("--data=")]
    assert hashed == read == [bundled.MOUNTS["data"], *([tuning.VALIDATION_DIR] if validation else [])]


def test_pulumi_program_sends_the_job_with_its_skip_await_annotation():
    """Under Pulumi's mocks: the Job resource's inputs are the rendered Job, annotation included (the provider
    reads skipAwait from a resource's inputs)."""
    from infra.plan import build_plan

    plan = build_plan("dev")
    job = next(r for r in plan.by_type("kubernetes:batch/v1:Job") if r.inputs["metadata"]["name"] == JOB)
    assert job.inputs == _job(plan.environment), job.urn
    assert job.inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


def test_the_job_stops_at_the_environments_training_deadline(dev):
    """activeDeadlineSeconds counts from the Job's start over every retry (Kubernetes, "Job termination and
    cleanup"); maxTrainingHours defaults to 72 and each environment may set its own."""
    assert dev.defaults["maxTrainingHours"] == 72
    assert _job(dev)["spec"]["activeDeadlineSeconds"] == 72 * 3600
    shorter = dataclasses.replace(dev, defaults={**dev.defaults, "maxTrainingHours": 5})
    assert _job(shorter)["spec"]["activeDeadlineSeconds"] == 5 * 3600

