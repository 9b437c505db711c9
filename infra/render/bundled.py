"""The bundled engine: our trainer as a Kubernetes Job with its checkpoint volume."""

from __future__ import annotations

from typing import Any

from infra import catalog
from infra.model import Environment, Workload
from infra.render import names
from infra.render.tuning import CONTINUE_DIR, VALIDATION_DIR

# The trainer exits with this code on a configuration error: retrying cannot help (trainer/__main__.py).
TRAINER_CONFIG_ERROR_EXIT = 2
KAITO_IMAGE_REGISTRY = "mcr.microsoft.com/aks/kaito"
# Pinned helper images: the data fetcher and the OCI pusher for adapter images.
CURL_IMAGE = "curlimages/curl:8.11.1"
ORAS_IMAGE = "ghcr.io/oras-project/oras:v1.2.2"
CHECKPOINT_STORAGE = "256Gi"
STORAGE_CLASS = "managed-csi-premium"
RUN_AS = 1000

MOUNTS = {
    "config": "/mnt/config",
    "data": "/mnt/data",
    "weights": "/workspace/tfs/weights",
    "results": "/mnt/results",
    "shm": "/dev/shm",
    "output": "/mnt/output",
}


def checkpoint_claim(env: Environment, w: Workload) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": names.meta(env, w, names.checkpoint_claim_name(w), "tuning"),
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


def job(env: Environment, w: Workload, jobs: dict[str, Workload]) -> dict[str, Any]:
    spec = w.spec
    sku = catalog.sku(spec["placement"]["instanceType"])
    preset = catalog.preset(spec["baseModel"])
    gpus = sku.gpus if sku else 1
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": names.config_map_name(w)}},
        {"name": "data", "emptyDir": {}},
        {"name": "weights", "emptyDir": {}},
        {"name": "results", "persistentVolumeClaim": {"claimName": names.checkpoint_claim_name(w)}},
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
        image = names.adapter_image(env, jobs[ref["tuningJob"]]) if "tuningJob" in ref else ref["image"]
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
        # One training process per GPU (trainer/distributed.py), each on its own GPU.
        "args": ["--nproc-per-node", str(gpus), "--config", f"{MOUNTS['config']}/training_config.yaml",
                 "--data", MOUNTS["data"]],
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
            "args": ["push", names.adapter_image(env, w), "--registry-config", "/home/oras/.docker/config.json",
                     "--config", "config.json:application/vnd.oci.image.config.v1+json",
                     "layer.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip"],
            "securityContext": _container_security(),
            "volumeMounts": [_mount("results", spec["outputDir"], read_only=True),
                             _mount("push-secret", "/home/oras/.docker", read_only=True)],
        }]
    else:
        volumes.append({"name": "output", "persistentVolumeClaim": {"claimName": output["volume"]["claimName"]}})
        trainer["volumeMounts"].append(_mount("output"))
        containers = [trainer]
    pod_labels = names.labels(env, w.team, w.name, "tuning")
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": names.meta(env, w, w.name, "tuning"),
        "spec": {
            "backoffLimit": 6,
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "podFailurePolicy": {"rules": [
                {"action": "FailJob", "onExitCodes": {"containerName": "trainer", "operator": "In",
                                                      "values": [TRAINER_CONFIG_ERROR_EXIT]}},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            ]},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 300,
                    "nodeSelector": {names.POOL_LABEL: spec["placement"]["nodePool"]},
                    "tolerations": [dict(names.GPU_TAINT), {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS,
                                        "fsGroup": RUN_AS, "seccompProfile": {"type": "RuntimeDefault"}},
                    "initContainers": init,
                    "containers": containers,
                    "volumes": volumes,
                },
            },
        },
    }

