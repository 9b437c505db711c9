"""Render an environment's validated workloads into Kubernetes objects.

The same list feeds `kaito-gitops render` (plain manifests for Flux or Argo CD),
`kaito-gitops diff`, the plan, and the Pulumi program, so what reviewers see is
exactly what gets deployed. Output is deterministic: objects sorted, keys
sorted when written.
"""

from __future__ import annotations

import copy
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from infra import catalog
from infra.model import INFERENCE_KIND, TUNING_KIND, Environment, Workload

WORKSPACE_API = "kaito.sh/v1beta1"
PART_OF = "kaito-gitops"
TEAM_LABEL = "kaito-gitops.dev/team"
ENV_LABEL = "kaito-gitops.dev/environment"
POOL_LABEL = "kaito-gitops.dev/pool"
GPU_TAINT = {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
# The trainer exits with this code on a configuration error: retrying cannot help (trainer/__main__.py).
TRAINER_CONFIG_ERROR_EXIT = 2
KAITO_IMAGE_REGISTRY = "mcr.microsoft.com/aks/kaito"
# Pinned helper images: the data fetcher and the OCI pusher for adapter images.
CURL_IMAGE = "curlimages/curl:8.11.1"
ORAS_IMAGE = "ghcr.io/oras-project/oras:v1.2.2"
CHECKPOINT_STORAGE = "256Gi"
STORAGE_CLASS = "managed-csi-premium"
RUN_AS = 1000
ORDER = {"Namespace": 0, "ConfigMap": 1, "PersistentVolumeClaim": 2, "Job": 3, "Workspace": 4}


def render_environment(env: Environment) -> list[dict[str, Any]]:
    objects = [_namespace(env, team) for team in sorted(env.defaults.get("teams", {}))]
    jobs = {w.name: w for w in env.workloads if w.kind == TUNING_KIND}
    for w in env.workloads:
        if w.kind == TUNING_KIND:
            objects += _tuning(env, w, jobs)
        elif w.kind == INFERENCE_KIND:
            objects.append(_inference_workspace(env, w, jobs))
    return sorted(objects, key=object_key)


def object_key(obj: dict[str, Any]) -> tuple:
    meta = obj["metadata"]
    return (ORDER.get(obj["kind"], 9), meta.get("namespace", ""), obj["kind"], meta["name"])


def labels(env: Environment, team: str, name: str | None = None, component: str | None = None) -> dict[str, str]:
    out = {
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": PART_OF,
        TEAM_LABEL: team,
        ENV_LABEL: env.name,
    }
    if name:
        out["app.kubernetes.io/name"] = name
    if component:
        out["app.kubernetes.io/component"] = component
    return out


def _meta(env: Environment, w: Workload, name: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": w.namespace, "labels": labels(env, w.team, w.name, component)}


def _namespace(env: Environment, team: str) -> dict[str, Any]:
    name = env.defaults.get("namespace", "{team}").replace("{team}", team)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels(env, team)}}


def adapter_image(env: Environment, job: Workload) -> str:
    image = job.spec["output"]["image"]
    return f"{env.defaults['registry']}/{image['repository']}:{image['tag']}"


def config_map_name(w: Workload) -> str:
    return f"{w.name}-training-config"


# --- tuning -----------------------------------------------------------------


def _tuning(env: Environment, w: Workload, jobs: dict[str, Workload]) -> list[dict[str, Any]]:
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(env, w, config_map_name(w), "tuning"),
        "data": {"training_config.yaml": yaml.dump(training_config(w), Dumper=_FastDumper, sort_keys=False)},
    }
    if w.spec["engine"] == "kaito":
        return [config_map, _tuning_workspace(env, w)]
    return [config_map, _checkpoint_claim(env, w), _bundled_job(env, w, jobs)]


@cache
def _kaito_defaults(method: str) -> dict[str, Any]:
    """KAITO's own default training config for the method (the data of a Helm-templated ConfigMap)."""
    template = (catalog.DATA / "kaito" / f"{method}-params.yaml").read_text(encoding="utf-8")
    block = template.split("training_config.yaml: |", 1)[1]
    return yaml.safe_load(textwrap.dedent(block))["training_config"]


def training_config(w: Workload) -> dict[str, Any]:
    """KAITO's six-section training config, starting from KAITO's defaults for the method."""
    spec, hp = w.spec, w.spec["hyperparameters"]
    config = copy.deepcopy(_kaito_defaults(spec["method"]))
    if spec["method"] == "qlora" and spec.get("quantization") == "8bit":
        config["QuantizationConfig"] = {"load_in_8bit": True}
    lora = config["LoraConfig"]
    for ours, theirs in (("r", "r"), ("alpha", "lora_alpha"), ("dropout", "lora_dropout"), ("targetModules", "target_modules")):
        if ours in hp.get("lora", {}):
            lora[theirs] = hp["lora"][ours]
    args = config["TrainingArguments"]
    args["output_dir"] = spec["outputDir"]
    for ours, theirs in (("epochs", "num_train_epochs"), ("batchSize", "per_device_train_batch_size"),
                         ("learningRate", "learning_rate"), ("seed", "seed")):
        if ours in hp:
            args[theirs] = hp[ours]
    if "seed" in hp:
        config["DatasetConfig"]["shuffle_seed"] = hp["seed"]
    if spec["engine"] == "bundled":
        _bundled_extensions(w, config)
    return {"training_config": config}


def _bundled_extensions(w: Workload, config: dict[str, Any]) -> None:
    """What only our trainer reads (its BundledConfig section, see trainer/config.py): eviction-safe
    checkpoints on the Job's volume, validation data, sequence length, continuation."""
    spec, hp = w.spec, w.spec["hyperparameters"]
    config["TrainingArguments"].update({"save_strategy": "steps", "save_steps": 200})
    bundled: dict[str, Any] = {"checkpoint_dir": f"{spec['outputDir']}/checkpoints"}
    if "maxSeqLength" in hp:
        bundled["max_seq_length"] = hp["maxSeqLength"]
    if "validation" in spec["data"]:
        bundled["validation_path"] = VALIDATION_DIR
    if "continueFrom" in spec:
        bundled["continue_from"] = f"{CONTINUE_DIR}/data"
    config["BundledConfig"] = bundled


def _source(spec_source: dict[str, Any], name: str | None = None) -> dict[str, Any]:
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


def _resource(w: Workload, count: int | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "instanceType": w.spec["placement"]["instanceType"],
        "labelSelector": {"matchLabels": {"apps": w.name}},
    }
    if count is not None:
        resource["count"] = count
    return resource


def _tuning_workspace(env: Environment, w: Workload) -> dict[str, Any]:
    spec = w.spec
    output = spec["output"]
    if "image" in output:
        out = {"image": adapter_image(env, w), "imagePushSecret": output["image"]["pushSecret"]}
    else:
        out = {"volumeSource": {"persistentVolumeClaim": {"claimName": output["volume"]["claimName"]}}}
    return {
        "apiVersion": WORKSPACE_API,
        "kind": "Workspace",
        "metadata": _meta(env, w, w.name, "tuning"),
        "resource": _resource(w),
        "tuning": {
            "preset": {"name": spec["baseModel"]},
            "method": spec["method"],
            "config": config_map_name(w),
            "input": _source(spec["data"]["train"], name=f"{w.name}-data"),
            "output": out,
        },
    }


def _inference_workspace(env: Environment, w: Workload, jobs: dict[str, Workload]) -> dict[str, Any]:
    adapters = []
    for adapter in w.spec["adapters"]:
        if "tuningJob" in adapter:
            job = jobs[adapter["tuningJob"]]
            source: dict[str, Any] = {"name": adapter["name"], "image": adapter_image(env, job)}
        else:
            source = _source(adapter, name=adapter["name"])
        adapters.append({"source": source, "strength": _strength(adapter["strength"])})
    inference: dict[str, Any] = {"preset": {"name": w.spec["preset"]}}
    if adapters:
        inference["adapters"] = adapters
    return {
        "apiVersion": WORKSPACE_API,
        "kind": "Workspace",
        "metadata": _meta(env, w, w.name, "inference"),
        "resource": _resource(w, count=w.spec["placement"]["count"]),
        "inference": inference,
    }


def _strength(value: float) -> str:
    """KAITO v1beta1 keeps adapter strength as a string; write the shortest exact form."""
    return str(float(value))


# --- bundled engine ---------------------------------------------------------

MOUNTS = {
    "config": "/mnt/config",
    "data": "/mnt/data",
    "weights": "/workspace/tfs/weights",
    "results": "/mnt/results",
    "shm": "/dev/shm",
}
VALIDATION_DIR = "/mnt/data/validation"
CONTINUE_DIR = "/mnt/continue"  # the pulled image lands in image/, its data/ next to it


def _checkpoint_claim(env: Environment, w: Workload) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(env, w, f"{w.name}-checkpoints", "tuning"),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": STORAGE_CLASS,
            "resources": {"requests": {"storage": CHECKPOINT_STORAGE}},
        },
    }


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": False,
        "runAsNonRoot": True,
    }


def _mount(name: str, path: str | None = None, read_only: bool = False, sub_path: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "mountPath": path or MOUNTS[name]}
    if read_only:
        out["readOnly"] = True
    if sub_path:
        out["subPath"] = sub_path
    return out


def _fetch_container(name: str, source: dict[str, Any], target: str) -> dict[str, Any] | None:
    """An init container putting a data source's files into `target` (volumes are mounted instead)."""
    if "urls" in source:
        script = " && ".join(
            f"curl --fail --location --retry 5 --proto =https -sS -o {target}/{i:03d}-$(basename '{url.split('?')[0]}') '{url}'"
            for i, url in enumerate(source["urls"])
        )
        image = CURL_IMAGE
    elif "image" in source:
        image, script = source["image"], f"cp -r /data/. {target}/"
    else:
        return None
    return {
        "name": name,
        "image": image,
        "command": ["sh", "-c", f"mkdir -p {target} && {script}"],
        "securityContext": _container_security(),
        "volumeMounts": [_mount("data")],
    }


def _bundled_job(env: Environment, w: Workload, jobs: dict[str, Workload]) -> dict[str, Any]:
    spec = w.spec
    sku = catalog.sku(spec["placement"]["instanceType"])
    preset = catalog.preset(spec["baseModel"])
    gpus = sku.gpus if sku else 1
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": config_map_name(w)}},
        {"name": "data", "emptyDir": {}},
        {"name": "weights", "emptyDir": {}},
        {"name": "results", "persistentVolumeClaim": {"claimName": f"{w.name}-checkpoints"}},
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Gi"}},
    ]
    init: list[dict[str, Any]] = [{
        "name": "model-weights",
        "image": f"{KAITO_IMAGE_REGISTRY}/kaito-{spec['baseModel']}:{preset.tag if preset else 'latest'}",
        "command": ["sh", "-c", f"cp -r {MOUNTS['weights']}/. /mnt/weights/"],
        "securityContext": _container_security(),
        "volumeMounts": [_mount("weights", "/mnt/weights")],
    }]
    trainer_mounts = [_mount("config", read_only=True), _mount("data"), _mount("weights", read_only=True),
                      _mount("results", spec["outputDir"]), _mount("shm")]
    for part, target in (("train", MOUNTS["data"]), ("validation", VALIDATION_DIR)):
        source = spec["data"].get(part)
        if source is None:
            continue
        fetch = _fetch_container(f"fetch-{part}-data", source, target)
        if fetch:
            init.append(fetch)
        else:
            volumes.append({"name": f"{part}-volume", "persistentVolumeClaim": {"claimName": source["volume"]["claimName"], "readOnly": True}})
            trainer_mounts.append(_mount(f"{part}-volume", target, read_only=True))
    if "continueFrom" in spec:
        ref = spec["continueFrom"]
        image = adapter_image(env, jobs[ref["tuningJob"]]) if "tuningJob" in ref else ref["image"]
        volumes.append({"name": "continue", "emptyDir": {}})
        init += [{
            "name": "pull-previous-adapter",
            "image": ORAS_IMAGE,
            "args": ["pull", image, "--output", f"{CONTINUE_DIR}/image"],
            "securityContext": _container_security(),
            "volumeMounts": [_mount("continue", CONTINUE_DIR)],
        }, {
            "name": "unpack-previous-adapter",
            "image": env.defaults["trainerImage"],
            "command": ["sh", "-c", f"tar -xzf {CONTINUE_DIR}/image/layer.tar.gz -C {CONTINUE_DIR}"],
            "securityContext": _container_security(),
            "volumeMounts": [_mount("continue", CONTINUE_DIR)],
        }]
        trainer_mounts.append(_mount("continue", CONTINUE_DIR, read_only=True))
    trainer = {
        "name": "trainer",
        "image": env.defaults["trainerImage"],
        "args": ["--config", f"{MOUNTS['config']}/training_config.yaml", "--data", MOUNTS["data"]],
        "resources": {"limits": {"nvidia.com/gpu": gpus}, "requests": {"nvidia.com/gpu": gpus}},
        "securityContext": _container_security(),
        "volumeMounts": trainer_mounts,
    }
    output = spec["output"]
    if "image" in output:
        # The trainer runs to completion first; its adapter is laid out as KAITO's adapter images are
        # (trainer/package.py), then pushed as an OCI image with no Docker daemon.
        context = f"{spec['outputDir']}/adapter-image"
        init += [trainer, {
            "name": "package-adapter",
            "image": env.defaults["trainerImage"],
            "args": ["package", "--adapter", spec["outputDir"], "--out", context],
            "securityContext": _container_security(),
            "volumeMounts": [_mount("results", spec["outputDir"])],
        }]
        volumes.append({"name": "push-secret", "secret": {"secretName": output["image"]["pushSecret"],
                                                           "items": [{"key": ".dockerconfigjson", "path": "config.json"}]}})
        containers = [{
            "name": "push-adapter",
            "image": ORAS_IMAGE,
            "workingDir": context,
            "args": ["push", adapter_image(env, w), "--registry-config", "/home/oras/.docker/config.json",
                     "--config", "config.json:application/vnd.oci.image.config.v1+json",
                     "layer.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip"],
            "securityContext": _container_security(),
            "volumeMounts": [_mount("results", spec["outputDir"], read_only=True),
                             _mount("push-secret", "/home/oras/.docker", read_only=True)],
        }]
    else:
        volumes.append({"name": "output", "persistentVolumeClaim": {"claimName": output["volume"]["claimName"]}})
        trainer["volumeMounts"].append(_mount("output", "/mnt/output"))
        containers = [trainer]
    pod_labels = labels(env, w.team, w.name, "tuning")
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(env, w, w.name, "tuning"),
        "spec": {
            "backoffLimit": 6,
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "podFailurePolicy": {"rules": [
                {"action": "FailJob", "onExitCodes": {"containerName": "trainer", "operator": "In",
                                                      "values": [TRAINER_CONFIG_ERROR_EXIT]}},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 300,
                    "nodeSelector": {POOL_LABEL: spec["placement"]["nodePool"]},
                    "tolerations": [dict(GPU_TAINT), {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS,
                                        "fsGroup": RUN_AS, "seccompProfile": {"type": "RuntimeDefault"}},
                    "initContainers": init,
                    "containers": containers,
                    "volumes": volumes,
                },
            },
        },
    }


# --- output -----------------------------------------------------------------

MARKER = ".kaito-gitops-rendered"


_FastDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the ConfigMap's training_config.yaml) as literal blocks, so diffs read line by line."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(obj: dict[str, Any]) -> str:
    return yaml.dump(copy.deepcopy(obj), Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=120)


def manifest_path(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    folder = meta.get("namespace", "_cluster")
    return f"{folder}/{obj['kind'].lower()}-{meta['name']}.yaml"


class OutputDirError(Exception):
    pass


def write_manifests(objects: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """One file per object. Files we wrote last time and no longer render are removed;
    a folder we did not write is never touched."""
    marker = out_dir / MARKER
    if out_dir.exists() and any(out_dir.iterdir()) and not marker.exists():
        raise OutputDirError(f"{out_dir} is not empty and was not written by kaito-gitops render; "
                             "choose an empty or new folder")
    previous = set(marker.read_text().split()) if marker.exists() else set()
    written = []
    for obj in objects:
        rel = manifest_path(obj)
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_yaml(obj), encoding="utf-8")
        written.append(rel)
    for stale in sorted(previous - set(written)):
        target = out_dir / stale
        if target.is_file():
            target.unlink()
            if target.parent != out_dir and not any(target.parent.iterdir()):
                target.parent.rmdir()
    out_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text("\n".join(sorted(written)) + "\n", encoding="utf-8")
    return [out_dir / rel for rel in written]
