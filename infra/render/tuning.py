"""TuningJob specs: the training ConfigMap both engines read, and KAITO's tuning Workspace."""

from __future__ import annotations

import copy
import textwrap
from functools import cache
from typing import Any

import yaml

from infra import catalog
from infra.model import Environment, Workload
from infra.render import names
from infra.render.common import resource, source

_FastDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
# Where the bundled Job puts validation data and a continued adapter (infra/render/bundled.py mounts them).
# Not under /mnt/data: a mount nested in the read-only training-data volume fails the container's start,
# the runtime cannot create its mount point there (kubernetes/kubernetes#121294).
VALIDATION_DIR = "/mnt/validation"
CONTINUE_DIR = "/mnt/continue"  # the pulled image lands in image/, its data/ next to it
TRAINER_MAX_SEQ_LENGTH = 2048  # BundledConfig.max_seq_length's default (trainer/config.py)


def config_map(env: Environment, w: Workload) -> dict[str, Any]:
    meta = names.meta(env, w, names.config_map_name(w), "tuning")
    meta["annotations"] = {names.SYNC_WAVE: "-1"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"training_config.yaml": config_text(w)}}


def config_text(w: Workload) -> str:
    """The ConfigMap's `training_config.yaml`; its hash names the ConfigMap (names.config_map_name)."""
    return yaml.dump(training_config(w), Dumper=_FastDumper, sort_keys=False)


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
    checkpoints on the Job's volume, validation data, sequence length, continuation, and the speed
    settings: packs of examples up to a token budget sized for one GPU of the size (catalog.plan_tuning),
    activation checkpointing only where that budget needs it, flash-attention and Liger's kernels."""
    spec, hp = w.spec, w.spec["hyperparameters"]
    max_seq_length = hp.get("maxSeqLength", TRAINER_MAX_SEQ_LENGTH)
    plan = catalog.plan_tuning(spec["baseModel"], spec["method"], spec.get("quantization"),
                               config["LoraConfig"].get("r", 8), config["LoraConfig"].get("lora_dropout", 0.0),
                               max_seq_length, spec["placement"]["instanceType"], fused_loss=True)
    args = config["TrainingArguments"]
    args.update({"save_strategy": "steps", "save_steps": 200, "use_liger_kernel": True})
    bundled: dict[str, Any] = {"checkpoint_dir": f"{spec['outputDir']}/checkpoints",
                               "attn_implementation": "flash_attention_2"}
    if plan:
        args["gradient_checkpointing"] = plan.gradient_checkpointing
        bundled["max_tokens_per_batch"] = plan.max_tokens_per_batch
    if "batchSize" in hp:  # examples per step, as users read it; the budget still bounds the tokens
        bundled["max_examples_per_batch"] = hp["batchSize"]
    if "maxSeqLength" in hp:
        bundled["max_seq_length"] = hp["maxSeqLength"]
    if "validation" in spec["data"]:
        bundled["validation_path"] = VALIDATION_DIR
    if "continueFrom" in spec:
        bundled["continue_from"] = f"{CONTINUE_DIR}/data"
    config["BundledConfig"] = bundled


def workspace(env: Environment, w: Workload) -> dict[str, Any]:
    spec = w.spec
    output = spec["output"]
    if "image" in output:
        out = {"image": names.adapter_image(env, w), "imagePushSecret": output["image"]["pushSecret"]}
    else:
        out = {"volumeSource": {"persistentVolumeClaim": {"claimName": output["volume"]["claimName"]}}}
    return {
        "apiVersion": names.WORKSPACE_API,
        "kind": "Workspace",
        "metadata": names.meta(env, w, w.name, "tuning"),
        "resource": resource(env, w),
        "tuning": {
            "preset": {"name": spec["baseModel"]},
            "method": spec["method"],
            "config": names.config_map_name(w),
            "input": source(env, spec["data"]["train"], name=names.tuning_input_name(w)),
            "output": out,
        },
    }

