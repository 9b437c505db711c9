"""KAITO v0.12's admission rules that a spec can break, checked before anything reaches a cluster.

Each rule names where KAITO applies it (kaito-project/kaito at 056b8280); docs/rendering.md lists them with
the fixtures that hold them. Rules the JSON Schemas already express (DNS-1123 names, one data source,
method lora/qlora) and those in infra/specs.py (presets, at most 10 adapters, unique adapter names, push
secret with an image output) are not repeated here.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from typing import Any

import yaml

from infra import catalog
from infra.model import Workload
from infra.render import names

Report = Callable[..., None]  # report(json_path, message, hint="")

# The image reference grammar of github.com/distribution/reference (KAITO parses every data and adapter
# image with reference.ParseDockerRef: api/v1beta1/workspace_validation.go DataSource.validateCreate).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?$")
MAX_NAME_LENGTH = 255
# KAITO names Kubernetes objects after sources, and those names are DNS-1123 labels (at most 63 characters):
# an adapter's puller container "puller-<name>" and, with pull secrets, its volume
# "docker-config-<name>-inference-adapter" (pkg/workspace/manifests/manifests.go GeneratePullerContainers,
# pkg/utils/common_preset.go ConfigImagePullSecretVolume); a tuning input with pull secrets gets the volume
# "docker-config-<input name>-tuning-input" (pkg/workspace/tuning/preset_tuning.go).
LABEL_MAX = 63
ADAPTER_NAME_MAX = LABEL_MAX - len("puller-")
ADAPTER_NAME_MAX_WITH_SECRETS = LABEL_MAX - len("docker-config-") - len("-inference-adapter")
INPUT_NAME_MAX_WITH_SECRETS = LABEL_MAX - len("docker-config-") - len("-tuning-input")
# The schema holds a Workspace's name to 52 characters (KAITO names a StatefulSet after it). An InferenceSet's
# Workspaces are named "<name>-" plus 5 generated characters (pkg/utils/inferenceset/inferenceset.go:
# GenerateName), so the InferenceSet's own name has 6 fewer.
WORKSPACE_NAME_MAX = 52
INFERENCE_SET_NAME_MAX = WORKSPACE_NAME_MAX - len("-") - 5


def _repository(image: str) -> str:
    """The reference without tag and digest: the part the 255-character limit applies to."""
    head, _, last = image.split("@", 1)[0].rpartition("/")
    return (head + "/" if head else "") + last.split(":", 1)[0]


def check_image(report: Report, path: str, image: str) -> None:
    if not IMAGE_REFERENCE.match(image) or len(_repository(image)) > MAX_NAME_LENGTH:
        hint = "lower-case repository, e.g. myregistry.azurecr.io/adapters/name:v1"
        report(path, f"{image!r} is not an image reference KAITO can parse", hint)


def check_inference(w: Workload, registry: str, report: Report) -> None:
    spec = w.spec
    runtime = spec["runtime"]
    if spec["replicas"] > 1 and len(w.name) > INFERENCE_SET_NAME_MAX:
        report("$.metadata.name", f"with replicas KAITO names each replica's Workspace {w.name!r} plus a 6-character "
                                  f"suffix, so the name may have at most {INFERENCE_SET_NAME_MAX} characters",
               f"shorten it to {INFERENCE_SET_NAME_MAX} characters")
    if "count" in spec["placement"]:
        report("$.spec.placement.count",
               "placement.count is deprecated in KAITO v1beta1 and overwritten by its node estimator",
               "remove it; set spec.replicas for more copies of the deployment")
    if runtime == "transformers" and catalog.preset(spec["preset"]) and spec["preset"] not in catalog.transformers_presets():
        report("$.spec.runtime", f"KAITO cannot serve {spec['preset']} with the transformers runtime",
               "use runtime: vllm, or one of: " + ", ".join(catalog.transformers_presets()))
    preset = catalog.preset(spec["preset"])
    if preset and preset.download_auth and "modelAccessSecret" not in spec:
        report("$.spec", f"KAITO downloads {spec['preset']} from Hugging Face and needs a token for it",
               "set modelAccessSecret: <Secret in the team namespace with key HF_TOKEN>")
    for i, adapter in enumerate(spec["adapters"]):
        path = f"$.spec.adapters[{i}]"
        if "image" in adapter:
            check_image(report, f"{path}.image", adapter["image"])
        _check_adapter_name(report, path, adapter, registry)
        if "strength" in adapter and runtime == "vllm":  # its 0..1 range is the schema's
            report(f"{path}.strength", "vLLM serves each adapter as its own model and KAITO refuses adapter strength",
                   "remove strength (clients pick the adapter by name), or set runtime: transformers to merge adapters")


def _check_adapter_name(report: Report, path: str, adapter: dict[str, Any], registry: str) -> None:
    """The adapter's name must leave room for the objects KAITO names after it."""
    name = adapter.get("name")
    if not name:
        return
    image = adapter.get("image", registry + "/")  # a tuningJob adapter is an image in our registry
    secrets = names.pull_secrets(registry, image, adapter.get("pullSecrets"))
    limit = ADAPTER_NAME_MAX_WITH_SECRETS if secrets else ADAPTER_NAME_MAX
    if len(name) > limit:
        where = f"{path}.name" if "name" in adapter and "tuningJob" not in adapter else path
        report(where, f"adapter name {name!r} is {len(name)} characters; KAITO derives object names from it "
                      f"that allow at most {limit}", "set a shorter name: for the adapter")


def check_tuning(w: Workload, registry: str, report: Report) -> None:
    spec = w.spec
    train = spec["data"]["train"]
    if "image" in train and names.pull_secrets(registry, train["image"], train.get("pullSecrets")):
        input_name = names.tuning_input_name(w)
        if len(input_name) > INPUT_NAME_MAX_WITH_SECRETS:
            report("$.metadata.name", f"KAITO derives object names from this job's data source {input_name!r} that "
                                      f"allow at most {INPUT_NAME_MAX_WITH_SECRETS} characters",
                   f"shorten the name to {INPUT_NAME_MAX_WITH_SECRETS - len(input_name) + len(w.name)} characters")
    for part in ("train", "validation"):
        image = spec["data"].get(part, {}).get("image")
        if image is not None:
            check_image(report, f"$.spec.data.{part}.image", image)
    image = spec.get("continueFrom", {}).get("image")
    if image is not None:
        check_image(report, "$.spec.continueFrom.image", image)


# The sections KAITO's webhook accepts in training_config.yaml (api/v1beta1/tuning_config_validation.go
# TrainingConfig); any other, such as our trainer's BundledConfig, is refused as "Unrecognized section".
KAITO_TRAINING_SECTIONS = ("ModelConfig", "QuantizationConfig", "LoraConfig", "TrainingArguments",
                           "DatasetConfig", "DataCollator")


def tuning_config_map_errors(config_map: dict[str, Any], method: str) -> list[str]:
    """Why KAITO's webhook would refuse a tuning Workspace that references this ConfigMap (validateConfigMap)."""
    text = config_map.get("data", {}).get("training_config.yaml")
    if text is None:
        return ["ConfigMap has no training_config.yaml"]
    config = (yaml.safe_load(text) or {}).get("training_config")
    if not isinstance(config, dict):
        return ["'training_config' is not a map"]
    errors = [f"Unrecognized section: {s}" for s in config if s not in KAITO_TRAINING_SECTIONS]
    quantization = config.get("QuantizationConfig") or {}
    flags = {k: quantization.get(k) for k in ("load_in_4bit", "load_in_8bit")}
    errors += [f"{k} must be a boolean" for k, v in flags.items() if v is not None and not isinstance(v, bool)]
    on = [k for k, v in flags.items() if v is True]
    if len(on) == 2:
        errors.append("load_in_4bit and load_in_8bit are both true")
    if method == "lora" and on:
        errors.append(f"method lora with {on[0]} true")
    if method == "qlora" and not on:
        errors.append("method qlora needs load_in_4bit or load_in_8bit true")
    output_dir = (config.get("TrainingArguments") or {}).get("output_dir")
    if output_dir is not None:
        joined = posixpath.normpath(posixpath.join("/mnt", str(output_dir).lstrip("/")))
        if not isinstance(output_dir, str) or joined == "/mnt" or not joined.startswith("/mnt/"):
            errors.append(f"output_dir {output_dir!r} is not a directory under /mnt")
    return errors
