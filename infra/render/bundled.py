"""The bundled engine: our trainer as a Kubernetes Job with its checkpoint volume.

The pod follows KAITO's own tuning pod (`pkg/workspace/tuning/preset_tuning.go` at the pinned
commit): preset weights are OCI artifacts pulled by an `oras pull` init container into the
directory the trainer reads; data and adapter images are copied with skopeo and their layers
unpacked, as KAITO's puller does (`pkg/workspace/image/puller.sh`); the adapter is pushed with
`oras push`, as KAITO's pusher does. No value from a spec is ever part of a shell script: every
container runs a fixed command, and URLs, image references and paths arrive as separate
arguments (after `--` where the tool takes options).
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any
from urllib.parse import urlsplit

from infra import catalog
from infra.model import Environment, Workload
from infra.render import names
from infra.render.tuning import CONTINUE_DIR, VALIDATION_DIR

# The trainer exits with this code on a configuration error: retrying cannot help (trainer/__main__.py).
TRAINER_CONFIG_ERROR_EXIT = 2
# Where KAITO's preset images live (charts/kaito/workspace/values.yaml presetRegistryName) and the
# helper images KAITO itself runs for the same steps (pkg/utils/common_preset.go DefaultORASToolImage,
# pkg/workspace/image/puller.go). curl: KAITO's data-downloader uses curlimages/curl; ours is pinned.
PRESET_REGISTRY = "mcr.microsoft.com/aks/kaito"
ORAS_IMAGE = "mcr.microsoft.com/oss/v2/oras-project/oras:v1.2.3"
SKOPEO_IMAGE = "mcr.microsoft.com/aks/skopeo:1.14.4-6"
CURL_IMAGE = "curlimages/curl:8.11.1"
CHECKPOINT_STORAGE = "256Gi"
STORAGE_CLASS = "managed-csi-premium"
# The trainer image's own user (trainer/Dockerfile `useradd --uid 10001`): a uid without a passwd entry gets
# HOME=/ from the container runtime, and Triton (Liger's kernels) would then try to create /.triton.
RUN_AS = 10001
# pulumi-kubernetes waits for a Job to complete (10 minutes by default, then `up` fails) unless this
# annotation is "true" (provider/pkg/metadata/annotations.go AnnotationSkipAwait, await.go).
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}
# AKS taints every node of a Spot pool with this; KAITO's tuning pods tolerate it on Azure
# (preset_tuning.go defaultTolerations). A toleration only allows a node, so a regular pool is unaffected.
SPOT_TOLERATION = {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
                   "effect": "NoSchedule"}
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"

# Where the pod mounts things (infra/specs.py keeps outputDir clear of them). weights: the trainer's default
# ModelConfig.pretrained_model_name_or_path (trainer/config.py DEFAULT_WEIGHTS_PATH; KAITO's base image links
# the same path to its /workspace/weights). registry-pull: one <secret>.json docker config per pull secret.
MOUNTS = {
    "config": "/mnt/config",
    "data": "/mnt/data",
    "weights": "/workspace/tfs/weights",
    "shm": "/dev/shm",
    "output": "/mnt/output",
    "registry-pull": "/mnt/registry/pull",
    "registry-push": "/mnt/registry/push",
}
PULL_AUTH_DIR = MOUNTS["registry-pull"]
CONFIG_FILE = f"{MOUNTS['config']}/training_config.yaml"
ADAPTER_CONTEXT = "adapter-image"  # under outputDir: what `python -m trainer package` writes

# Copy an image and unpack its layers' data/ into a directory, as KAITO's puller does: `skopeo copy
# --dest-decompress` to a dir: layout, list the layers with `skopeo inspect`, untar each in order.
# Fixed text: the image, the target and the credentials directory are its arguments $1, $2, $3.
PULL_IMAGE_SCRIPT = """set -eu
ref="$1"; dest="$2"; auth_dir="$3"
work="$(mktemp -d)"
pulled=""
for auth in "$auth_dir"/*.json; do
  [ -f "$auth" ] || continue
  if skopeo copy --dest-decompress --authfile "$auth" "docker://$ref" "dir:$work/image"; then
    pulled=1
    break
  fi
done
if [ -z "$pulled" ]; then
  echo "cannot pull the image with any credentials in $auth_dir" >&2
  exit 1
fi
mkdir -p "$work/rootfs" "$dest"
for layer in $(skopeo inspect --format '{{range .Layers}}{{slice . 7}} {{end}}' "dir:$work/image"); do
  tar -x -f "$work/image/$layer" -C "$work/rootfs"
done
cp -R "$work/rootfs/data/." "$dest/"
"""


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


def weights_image(preset_name: str) -> str:
    """The preset's weights artifact, named as KAITO names it (pkg/utils/common_preset.go GetPresetImageName)."""
    preset = catalog.preset(preset_name)
    return f"{PRESET_REGISTRY}/kaito-{preset_name}:{preset.tag if preset else 'latest'}"


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": False,
        "runAsNonRoot": True,
    }


def _mount(name: str, path: str | None = None, read_only: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "mountPath": path or MOUNTS[name]}
    if read_only:
        out["readOnly"] = True
    return out


def _container(name: str, image: str, command: list[str], args: list[str], mounts: list[dict[str, Any]],
               **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, "command": command, "args": args, **extra,
            "securityContext": _container_security(), "volumeMounts": mounts}


def download_name(index: int, url: str) -> str:
    """A safe local file name for a URL: its index, then its last path segment with only [A-Za-z0-9._-]."""
    last = posixpath.basename(urlsplit(url).path) or "data"
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", last).lstrip(".")[-100:] or "data"
    return f"{index:03d}-{safe}"


def _download(name: str, urls: list[str], target: str, volume: str) -> dict[str, Any]:
    """One curl for every URL: `--output` names pair with the URLs after `--` in order; --globoff keeps
    [] and {} literal, --disable skips any .curlrc."""
    args = ["--disable", "--fail", "--location", "--globoff", "--proto", "=https", "--retry", "5",
            "--silent", "--show-error"]
    for i, url in enumerate(urls):
        args += ["--output", f"{target}/{download_name(i, url)}"]
    return _container(name, CURL_IMAGE, ["curl"], [*args, "--", *urls], [_mount(volume, target)])


def _pull_image(name: str, ref: str, target: str, volume: str, mount_at: str) -> dict[str, Any]:
    return _container(name, SKOPEO_IMAGE, ["/bin/sh", "-c", PULL_IMAGE_SCRIPT, "pull-image"],
                      [ref, target, PULL_AUTH_DIR],
                      [_mount(volume, mount_at), _mount("registry-pull", read_only=True)])


def _lineage(env: Environment, w: Workload) -> list[str]:
    """What the adapter image's manifest annotations record (trainer/package.py adds what it measures)."""
    spec = w.spec
    facts = {
        "sh.kaito.model.name": spec["baseModel"],  # the key KAITO's own pusher writes
        "kaito-gitops.dev/workload": f"{env.name}/{w.team}/{w.name}",
        "kaito-gitops.dev/method": spec["method"] + (f"-{spec['quantization']}" if "quantization" in spec else ""),
    }
    for part in ("train", "validation"):
        source = spec["data"].get(part)
        if source is not None:
            kept = {k: v for k, v in source.items() if k in ("urls", "image", "volume")}
            facts[f"kaito-gitops.dev/data.{part}"] = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return [f"--annotation={key}={value}" for key, value in facts.items()]


def job(env: Environment, w: Workload, jobs: dict[str, Workload]) -> dict[str, Any]:
    spec = w.spec
    sku = catalog.sku(spec["placement"]["instanceType"])
    gpus = sku.gpus if sku else 1
    pull_secrets = [names.PULL_SECRET]
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": names.config_map_name(w)}},
        {"name": "weights", "emptyDir": {}},
        {"name": "results", "persistentVolumeClaim": {"claimName": names.checkpoint_claim_name(w)}},
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Gi"}},
    ]
    init: list[dict[str, Any]] = [_container(
        "model-weights", ORAS_IMAGE, ["oras", "pull"],
        ["--registry-config", f"{PULL_AUTH_DIR}/{pull_secrets[0]}.json", "--output", MOUNTS["weights"],
         "--", weights_image(spec["baseModel"])],
        [_mount("weights"), _mount("registry-pull", read_only=True)])]
    trainer_mounts = [_mount("config", read_only=True), _mount("weights", read_only=True),
                      _mount("results", spec["outputDir"]), _mount("shm")]
    data_mounts = []
    for part, target in (("train", MOUNTS["data"]), ("validation", VALIDATION_DIR)):
        source = spec["data"].get(part)
        if source is None:
            continue
        volume = f"{part}-data"
        if "volume" in source:
            volumes.append({"name": volume, "persistentVolumeClaim": {"claimName": source["volume"]["claimName"],
                                                                      "readOnly": True}})
        else:
            volumes.append({"name": volume, "emptyDir": {}})
            if "urls" in source:
                init.append(_download(f"fetch-{part}-data", source["urls"], target, volume))
            else:
                pull_secrets += source.get("pullSecrets", [])
                init.append(_pull_image(f"fetch-{part}-data", source["image"], target, volume, target))
        data_mounts.append(_mount(volume, target, read_only=True))  # the trainer only reads the data
    trainer_mounts += data_mounts
    if "continueFrom" in spec:
        ref = spec["continueFrom"]
        image = names.adapter_image(env, jobs[ref["tuningJob"]]) if "tuningJob" in ref else ref["image"]
        volumes.append({"name": "continue", "emptyDir": {}})
        init.append(_pull_image("pull-previous-adapter", image, f"{CONTINUE_DIR}/data", "continue", CONTINUE_DIR))
        trainer_mounts.append(_mount("continue", CONTINUE_DIR, read_only=True))
    volumes.append({"name": "registry-pull", "projected": {"sources": [
        {"secret": {"name": s, "items": [{"key": ".dockerconfigjson", "path": f"{s}.json"}]}}
        for s in dict.fromkeys(pull_secrets)]}})
    trainer = {
        "name": "trainer",
        "image": env.defaults["trainerImage"],
        # One training process per GPU (trainer/distributed.py), each on its own GPU.
        "args": ["--nproc-per-node", str(gpus), "--config", CONFIG_FILE, "--data", MOUNTS["data"]],
        "resources": {"limits": {"nvidia.com/gpu": gpus}, "requests": {"nvidia.com/gpu": gpus}},
        "securityContext": _container_security(),
        "volumeMounts": trainer_mounts,
    }
    output = spec["output"]
    if "image" in output:
        # The trainer runs to completion first; its adapter is laid out as KAITO's adapter images are,
        # with lineage annotations (trainer/package.py), then pushed as an OCI image with no Docker daemon.
        context = f"{spec['outputDir']}/{ADAPTER_CONTEXT}"
        lineage = _lineage(env, w)
        if "continueFrom" in spec:
            lineage.append(f"--annotation=kaito-gitops.dev/continued-from={image}")
        init += [trainer, _container(
            "package-adapter", env.defaults["trainerImage"], ["python", "-m", "trainer"],
            ["package", f"--adapter={spec['outputDir']}", f"--out={context}",
             f"--config={CONFIG_FILE}", *[f"--data={m['mountPath']}" for m in data_mounts], *lineage],
            [_mount("results", spec["outputDir"]), _mount("config", read_only=True),
             *[dict(m) for m in data_mounts]])]  # copies: a shared dict would be written as a YAML alias
        volumes.append({"name": "registry-push", "secret": {
            "secretName": output["image"]["pushSecret"],
            "items": [{"key": ".dockerconfigjson", "path": "config.json"}]}})
        containers = [_container(
            "push-adapter", ORAS_IMAGE, ["oras", "push"],
            ["--registry-config", f"{MOUNTS['registry-push']}/config.json",
             "--config", f"config.json:{CONFIG_MEDIA_TYPE}", "--annotation-file", "annotations.json",
             "--", names.adapter_image(env, w), f"layer.tar.gz:{LAYER_MEDIA_TYPE}"],
            [_mount("results", spec["outputDir"], read_only=True), _mount("registry-push", read_only=True)],
            workingDir=context)]
    else:
        volumes.append({"name": "output", "persistentVolumeClaim": {"claimName": output["volume"]["claimName"]}})
        trainer["volumeMounts"].append(_mount("output"))
        containers = [trainer]
    metadata = names.meta(env, w, w.name, "tuning")
    metadata["annotations"] = dict(SKIP_AWAIT)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            # Counted from the Job's start over every retry (Kubernetes "Job termination and cleanup"): at the
            # deadline the pods get SIGTERM, the trainer checkpoints, and the Job fails with DeadlineExceeded.
            "activeDeadlineSeconds": env.defaults["maxTrainingHours"] * 3600,
            "backoffLimit": 6,
            "podFailurePolicy": {"rules": [
                {"action": "FailJob", "onExitCodes": {"containerName": "trainer", "operator": "In",
                                                      "values": [TRAINER_CONFIG_ERROR_EXIT]}},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            ]},
            "template": {
                "metadata": {"labels": names.labels(env, w.team, w.name, "tuning")},
                "spec": {
                    "restartPolicy": "Never",
                    # No container calls the Kubernetes API: no token in the pod for a compromised
                    # dependency to use.
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 300,
                    "nodeSelector": {names.POOL_LABEL: spec["placement"]["nodePool"]},
                    "tolerations": [dict(names.GPU_TAINT),
                                    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                                    dict(SPOT_TOLERATION)],
                    "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS,
                                        "fsGroup": RUN_AS, "seccompProfile": {"type": "RuntimeDefault"}},
                    "initContainers": init,
                    "containers": containers,
                    "volumes": volumes,
                },
            },
        },
    }
