"""The trainer's configuration: KAITO's `training_config.yaml`, checked without torch.

KAITO's tuning image reads one ConfigMap key, `training_config.yaml`, with the sections
ModelConfig, QuantizationConfig, LoraConfig, TrainingArguments, DataCollator and DatasetConfig.
Every key KAITO accepts is accepted here, so one ConfigMap serves both engines. Our own
extensions live in one extra section, `BundledConfig`, because KAITO's parser ignores sections
it does not know but rejects unknown keys inside its own sections.

This module imports only the standard library and PyYAML: the renderer (infra/render/) uses
`parse_config` to check the ConfigMaps it writes, on machines without torch.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from trainer import safe_yaml
from trainer.text import escape

DEFAULT_CONFIG_PATH = "/mnt/config/training_config.yaml"
DEFAULT_WEIGHTS_PATH = "/workspace/tfs/weights"
TORCH_DTYPES = ("bfloat16", "float16", "float32", "auto")


class ConfigError(Exception):
    """One or more problems in training_config.yaml; each line names the section and key."""

    def __init__(self, problems: list[str], source: str = "training_config.yaml"):
        # Keys, values and paths come from the user's file: each problem stays one printable line.
        self.problems = [escape(p) for p in problems]
        self.source = escape(source)
        super().__init__("\n".join(f"{self.source}: {p}" for p in self.problems))


def _help(text: str, default: Any = MISSING, factory: Any = MISSING) -> Any:
    if factory is not MISSING:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


# ---------------------------------------------------------------------------------------------
# Type checking of YAML values against annotation strings such as "int | None" or "list[str]".
# KAITO turns every value into a command-line string, so "2e-4" (which PyYAML reads as a
# string) and "true" are accepted for float and bool keys, as KAITO accepts them.
# ---------------------------------------------------------------------------------------------
_BOOL_STRINGS = {"true": True, "false": False, "yes": True, "no": False}


def _coerce_one(kind: str, value: Any) -> tuple[bool, Any]:
    if kind == "None":
        return value is None, None
    if value is None:
        return False, None
    if kind == "bool":
        if isinstance(value, bool):
            return True, value
        if isinstance(value, str) and value.lower() in _BOOL_STRINGS:
            return True, _BOOL_STRINGS[value.lower()]
        return False, None
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return False, None
        if kind == "int" and isinstance(value, float):
            return False, None
        try:
            number = (int if kind == "int" else float)(value)
        except (ValueError, OverflowError):  # not a number, thousands of digits, or an int beyond any float
            return False, None
        if isinstance(number, float) and not math.isfinite(number) or abs(number) >= 2**63:
            return False, None  # NaN, infinity, or beyond what torch and transformers take
        return True, number
    if kind == "str":
        return isinstance(value, str), value
    if kind.startswith("list"):
        if not isinstance(value, list):
            return False, None
        inner = kind[5:-1] if kind.startswith("list[") else ""
        if not inner:
            return True, value
        out = []
        for item in value:
            ok, item = _coerce_one(inner, item)
            if not ok:
                return False, None
            out.append(item)
        return True, out
    if kind == "dict":
        return isinstance(value, dict), value
    raise AssertionError(f"unknown type spec {kind!r}")


def _coerce(spec: str, value: Any) -> tuple[bool, Any]:
    """Return (ok, value converted to the first kind in `spec` that accepts it)."""
    # str last: "true" for "bool | str" is a bool, "8" for "int | str" an int.
    kinds = sorted((k.strip() for k in spec.split("|")), key=lambda k: k == "str")
    for kind in kinds:
        ok, converted = _coerce_one(kind, value)
        if ok:
            return True, converted
    return False, None


def _numeric(value: Any) -> bool:
    """A number, or a string Python reads as one (nan, inf, 1e999), that was still refused."""
    try:
        float(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return not isinstance(value, bool)


_WORDS = {"None": "null", "str": "a string", "int": "an integer", "float": "a number",
          "bool": "true or false", "dict": "a mapping", "list": "a list"}
_PLURALS = {"str": "strings", "int": "integers", "float": "numbers", "bool": "booleans"}


def _describe(spec: str) -> str:
    kinds = (k.strip() for k in spec.split("|"))
    return " or ".join(f"a list of {_PLURALS[k[5:-1]]}" if k.startswith("list[") else _WORDS[k] for k in kinds)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------
@dataclass
class Section:
    """Base of every section: explicit fields are ours; PASSTHROUGH keys go to the library."""

    SECTION: ClassVar[str] = ""
    # Keys the underlying library accepts that we forward unchanged: name -> type spec.
    PASSTHROUGH: ClassVar[dict[str, str]] = {}
    # Keys of older library versions that KAITO's image accepts: name -> new name, or None when
    # the key has no effect any more (accepted, logged, dropped).
    LEGACY: ClassVar[dict[str, str | None]] = {}

    extra: dict[str, Any] = field(default_factory=dict, metadata={"help": "Keys passed through to the library."})

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError(problems)

    def problems(self) -> list[str]:
        """Cross-field checks; each message names the key to change."""
        return []


@dataclass
class ModelConfig(Section):
    """Arguments of AutoModelForCausalLM.from_pretrained, as KAITO names them."""

    SECTION: ClassVar[str] = "ModelConfig"

    pretrained_model_name_or_path: str = _help("Directory of the base model's weights and tokenizer.", DEFAULT_WEIGHTS_PATH)
    state_dict: dict | None = _help("Accepted for KAITO compatibility; must be null.", None)
    cache_dir: str | None = _help("Hugging Face cache directory.", None)
    from_tf: bool = _help("Accepted for KAITO compatibility; TensorFlow weights are not supported, must be false.", False)
    force_download: bool = _help("Passed to from_pretrained.", False)
    resume_download: bool = _help("Accepted for KAITO compatibility; no effect.", False)
    proxies: dict | str | None = _help("Passed to from_pretrained.", None)
    output_loading_info: bool = _help("Accepted for KAITO compatibility; no effect.", False)
    local_files_only: bool = _help("Never download: the weights are in the image or on a volume.", True)
    revision: str = _help("Model revision, passed to from_pretrained.", "main")
    trust_remote_code: bool = _help("Run code shipped with the model (needed by some architectures).", False)
    load_in_4bit: bool = _help("Same as QuantizationConfig.load_in_4bit (KAITO accepts it here too).", False)
    load_in_8bit: bool = _help("Same as QuantizationConfig.load_in_8bit (KAITO accepts it here too).", False)
    torch_dtype: str | None = _help(
        "Weights dtype: bfloat16, float16, float32 or auto. bfloat16 falls back to float32 on a machine without a "
        "bf16-capable GPU.", "bfloat16")
    device_map: str | dict | None = _help(
        "Accepted for KAITO compatibility; on a GPU each training process loads the whole model onto its own GPU.", "auto")
    chat_template: str | None = _help("A chat template file, or the template itself, replacing the tokenizer's.", None)

    def problems(self) -> list[str]:
        out = []
        if self.state_dict is not None:
            out.append("ModelConfig.state_dict: a state dict cannot be given in YAML; remove the key")
        if self.from_tf:
            out.append("ModelConfig.from_tf: TensorFlow checkpoints are not supported; set it to false and give "
                       "safetensors weights")
        if self.torch_dtype is not None and self.torch_dtype not in TORCH_DTYPES:
            out.append(f"ModelConfig.torch_dtype: {self.torch_dtype!r} is not one of {', '.join(TORCH_DTYPES)}")
        if not self.pretrained_model_name_or_path:
            out.append("ModelConfig.pretrained_model_name_or_path: must name the base model directory")
        return out


@dataclass
class QuantizationConfig(Section):
    """transformers.BitsAndBytesConfig: set load_in_4bit for QLoRA."""

    SECTION: ClassVar[str] = "QuantizationConfig"

    quant_method: str = _help("Only bitsandbytes is supported.", "bitsandbytes")
    load_in_8bit: bool = _help("Load the base model in 8 bits.", False)
    load_in_4bit: bool = _help("Load the base model in 4 bits (QLoRA).", False)
    llm_int8_threshold: float = _help("LLM.int8 outlier threshold.", 6.0)
    llm_int8_skip_modules: list[str] | None = _help("Modules not to quantize.", None)
    llm_int8_enable_fp32_cpu_offload: bool = _help("Offload part of the model to the CPU in fp32.", False)
    llm_int8_has_fp16_weight: bool = _help("Keep fp16 main weights for LLM.int8.", False)
    bnb_4bit_compute_dtype: str | None = _help(
        "Compute dtype of 4-bit layers; default: the model dtype (bfloat16 on an A100).", None)
    bnb_4bit_quant_type: str = _help("fp4 or nf4; nf4 is what QLoRA was published with.", "nf4")
    bnb_4bit_use_double_quant: bool = _help("Quantize the quantization constants too (saves ~0.4 bit/param).", False)
    bnb_4bit_quant_storage: str | None = _help("Storage dtype of packed 4-bit weights.", None)

    @property
    def enabled(self) -> bool:
        return self.load_in_4bit or self.load_in_8bit

    def problems(self) -> list[str]:
        out = []
        if self.quant_method != "bitsandbytes":
            out.append(f"QuantizationConfig.quant_method: {self.quant_method!r} is not supported; use bitsandbytes")
        if self.load_in_4bit and self.load_in_8bit:
            out.append("QuantizationConfig.load_in_4bit/load_in_8bit: set only one of them")
        if self.bnb_4bit_quant_type not in ("fp4", "nf4"):
            out.append(f"QuantizationConfig.bnb_4bit_quant_type: {self.bnb_4bit_quant_type!r} is not fp4 or nf4")
        for key in ("bnb_4bit_compute_dtype", "bnb_4bit_quant_storage"):
            value = getattr(self, key)
            if value is not None and value not in TORCH_DTYPES[:3] + ("uint8",):
                out.append(f"QuantizationConfig.{key}: {value!r} is not bfloat16, float16 or float32")
        return out


@dataclass
class LoraConfig(Section):
    """peft.LoraConfig. target_modules left empty means every linear layer except the output head."""

    SECTION: ClassVar[str] = "LoraConfig"
    PASSTHROUGH: ClassVar[dict[str, str]] = {
        "fan_in_fan_out": "bool", "layers_to_transform": "int | list[int] | None",
        "layers_pattern": "str | list[str] | None", "rank_pattern": "dict | None", "alpha_pattern": "dict | None",
        "loftq_config": "dict | None", "megatron_config": "dict | None", "megatron_core": "str | None",
        "trainable_token_indices": "list | dict | None", "layer_replication": "list | None",
        "target_parameters": "list[str] | None", "ensure_weight_tying": "bool", "lora_bias": "bool",
        "use_qalora": "bool", "qalora_group_size": "int", "alora_invocation_tokens": "list[int] | None",
        "revision": "str | None",
    }

    r: int = _help("LoRA rank.", 8)
    lora_alpha: int = _help("LoRA scaling numerator (scale = lora_alpha / r).", 8)
    lora_dropout: float = _help("Dropout on the LoRA input.", 0.0)
    target_modules: str | list[str] | None = _help(
        "Module names to adapt. Default (null): every linear layer but the output head "
        "(Phi-3: qkv_proj, o_proj, gate_up_proj, down_proj). A name that matches no module is an error.", None)
    exclude_modules: str | list[str] | None = _help("Module names never to adapt.", None)
    bias: str = _help("none, all or lora_only.", "none")
    use_rslora: bool = _help("Rank-stabilised scaling lora_alpha / sqrt(r).", False)
    use_dora: bool = _help("Weight-decomposed LoRA (slower, sometimes better).", False)
    modules_to_save: list[str] | None = _help("Extra modules trained in full and saved with the adapter.", None)
    init_lora_weights: bool | str = _help("LoRA initialisation (true: B=0 so training starts at the base model).", True)
    task_type: str | None = _help("Only CAUSAL_LM.", "CAUSAL_LM")
    inference_mode: bool = _help("Must be false for training.", False)

    def problems(self) -> list[str]:
        out = []
        if self.r < 1:
            out.append(f"LoraConfig.r: must be at least 1, got {self.r}")
        if self.lora_alpha <= 0:
            out.append(f"LoraConfig.lora_alpha: must be positive, got {self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            out.append(f"LoraConfig.lora_dropout: must be in [0, 1), got {self.lora_dropout}")
        if self.bias not in ("none", "all", "lora_only"):
            out.append(f"LoraConfig.bias: {self.bias!r} is not none, all or lora_only")
        if self.task_type not in (None, "CAUSAL_LM"):
            out.append(f"LoraConfig.task_type: {self.task_type!r}; this trainer tunes causal LMs, use CAUSAL_LM")
        if self.inference_mode:
            out.append("LoraConfig.inference_mode: must be false, the adapter is being trained")
        return out


# transformers.TrainingArguments keys (transformers 5) that we forward without interpreting.
_TRAINING_PASSTHROUGH = {
    "lr_scheduler_kwargs": "dict | str | None", "optim_args": "str | None", "adam_beta1": "float",
    "adam_beta2": "float", "adam_epsilon": "float", "optim_target_modules": "str | list[str] | None",
    "average_tokens_across_devices": "bool", "label_smoothing_factor": "float", "bf16_full_eval": "bool",
    "fp16_full_eval": "bool", "tf32": "bool | None", "torch_compile": "bool", "torch_compile_backend": "str | None",
    "torch_compile_mode": "str | None", "use_liger_kernel": "bool", "liger_kernel_config": "dict | None",
    "neftune_noise_alpha": "float | None", "torch_empty_cache_steps": "int | None", "auto_find_batch_size": "bool",
    "logging_strategy": "str", "logging_first_step": "bool", "log_on_each_node": "bool",
    "logging_nan_inf_filter": "bool", "include_num_input_tokens_seen": "bool | str", "log_level": "str",
    "log_level_replica": "str", "disable_tqdm": "bool | None", "run_name": "str | None", "project": "str",
    "eval_delay": "float", "prediction_loss_only": "bool", "eval_on_start": "bool",
    "eval_do_concat_batches": "bool", "eval_use_gather_object": "bool", "eval_accumulation_steps": "int | None",
    "include_for_metrics": "list[str]", "batch_eval_metrics": "bool", "save_only_model": "bool",
    "save_on_each_node": "bool", "enable_jit_checkpoint": "bool", "push_to_hub": "bool", "hub_token": "str | None",
    "hub_private_repo": "bool | None", "hub_model_id": "str | None", "hub_strategy": "str",
    "hub_always_push": "bool", "hub_revision": "str | None", "load_best_model_at_end": "bool",
    "metric_for_best_model": "str | None", "greater_is_better": "bool | None", "ignore_data_skip": "bool",
    "restore_callback_states_from_checkpoint": "bool", "full_determinism": "bool", "use_cpu": "bool",
    "accelerator_config": "dict | str | None", "dataloader_drop_last": "bool", "dataloader_pin_memory": "bool",
    "dataloader_persistent_workers": "bool", "dataloader_prefetch_factor": "int | None",
    "dataloader_multiprocessing_context": "str | None", "dataloader_in_order": "bool",
    "label_names": "list[str] | None", "train_sampling_strategy": "str", "length_column_name": "str",
    "ddp_bucket_cap_mb": "int | None", "ddp_broadcast_buffers": "bool | None", "ddp_static_graph": "bool | None",
    "ddp_backend": "str | None", "ddp_timeout": "int", "fsdp": "str | None", "fsdp_config": "dict | str | None",
    "deepspeed": "dict | str | None", "debug": "str | list[str]", "skip_memory_metrics": "bool",
    "do_train": "bool", "do_eval": "bool", "do_predict": "bool", "local_rank": "int",
    "activation_checkpointing": "bool | None", "activation_checkpointing_kwargs": "dict | str | None",
    "use_cache": "bool", "trackio_space_id": "str | None", "trackio_bucket_id": "str | None",
    "trackio_static_space_id": "str | None",
}

# TrainingArguments keys of the transformers 4.x that KAITO's image runs, renamed or dropped in 5.
_TRAINING_LEGACY: dict[str, str | None] = {
    "evaluation_strategy": "eval_strategy", "no_cuda": "use_cpu", "warmup_ratio": "warmup_steps",
    "overwrite_output_dir": None, "logging_dir": None, "save_safetensors": None, "use_mps_device": None,
    "push_to_hub_model_id": None, "push_to_hub_organization": None, "push_to_hub_token": None,
    "fp16_backend": None, "half_precision_backend": None, "fp16_opt_level": None, "jit_mode_eval": None,
    "use_ipex": None, "tpu_num_cores": None, "tpu_metrics_debug": None, "past_index": None,
    "mp_parameters": None, "ray_scope": None, "include_inputs_for_metrics": None,
    "include_tokens_per_second": None, "split_batches": None, "dispatch_batches": None,
    "fsdp_min_num_params": None, "fsdp_transformer_layer_cls_to_wrap": None, "torchdynamo": None,
    "use_legacy_prediction_loop": None, "group_by_length": None, "sharded_ddp": None, "xpu_backend": None,
}


@dataclass
class TrainingArguments(Section):
    """transformers.TrainingArguments; defaults are transformers' except where the help says ours."""

    SECTION: ClassVar[str] = "TrainingArguments"
    PASSTHROUGH: ClassVar[dict[str, str]] = _TRAINING_PASSTHROUGH
    LEGACY: ClassVar[dict[str, str | None]] = _TRAINING_LEGACY

    output_dir: str = _help("Where the adapter, metrics.json, train_log.jsonl and loss_curve.png are written.", "/mnt/results")
    num_train_epochs: float = _help("Epochs over the training data.", 3.0)
    max_steps: int = _help("Stop after this many optimizer steps (overrides num_train_epochs when > 0).", -1)
    per_device_train_batch_size: int = _help("Examples per device and step.", 8)
    per_device_eval_batch_size: int = _help("Examples per device in evaluation.", 8)
    gradient_accumulation_steps: int = _help("Batches accumulated per optimizer step.", 1)
    learning_rate: float = _help("Peak learning rate (ours: 2e-4, a LoRA-sized default; transformers' is 5e-5).", 2e-4)
    weight_decay: float = _help("AdamW weight decay.", 0.0)
    warmup_steps: float = _help("Warm-up steps; a value below 1 is a fraction of all steps (ours: 0.03).", 0.03)
    lr_scheduler_type: str = _help("Learning-rate schedule (ours: cosine; transformers' is linear).", "cosine")
    optim: str = _help("Optimizer name (transformers' OptimizerNames).", "adamw_torch_fused")
    max_grad_norm: float = _help("Gradient clipping norm.", 1.0)
    logging_steps: float = _help("Log the training loss every N steps (ours: 10).", 10)
    save_strategy: str = _help("no, steps or epoch. A SIGTERM checkpoint is taken whatever this says.", "steps")
    save_steps: float = _help("Checkpoint every N optimizer steps (ours: 100); below 1, a fraction of all steps.", 100)
    save_total_limit: int | None = _help("Complete checkpoints kept (ours: 2; null keeps all).", 2)
    eval_strategy: str = _help("no, steps or epoch: evaluation during training (the final evaluation always runs).", "no")
    eval_steps: float | None = _help("Evaluate every N steps when eval_strategy is steps.", None)
    seed: int = _help("Seed for LoRA initialisation, data order and dropout: the same seed gives the same run.", 42)
    data_seed: int | None = _help("Seed for data sampling only; default: seed.", None)
    bf16: bool | None = _help("bfloat16 mixed precision; null (ours): on when the GPU supports it.", None)
    fp16: bool = _help("float16 mixed precision.", False)
    gradient_checkpointing: bool = _help("Recompute activations to save memory (ours: on).", True)
    gradient_checkpointing_kwargs: dict | None = _help(
        "Passed to gradient_checkpointing_enable (ours: use_reentrant false, which LoRA on frozen "
        "weights needs to get gradients without hacks).", factory=lambda: {"use_reentrant": False})
    resume_from_checkpoint: str | None = _help(
        "A checkpoint directory to resume from; default: the newest complete checkpoint found.", None)
    ddp_find_unused_parameters: bool | None = _help("DDP setting (KAITO's template sets false).", None)
    report_to: str | list[str] | None = _help("Experiment trackers (ours: none; train_log.jsonl is always written).", "none")
    dataloader_num_workers: int = _help("Data loader worker processes.", 0)
    remove_unused_columns: bool = _help("Ours: false; the collator picks the columns it needs.", False)

    def problems(self) -> list[str]:
        out = []
        if self.bf16 and self.fp16:
            out.append("TrainingArguments.bf16/fp16: set only one of them")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            out.append("TrainingArguments.num_train_epochs: must be positive when max_steps is not set")
        for key in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            if getattr(self, key) < 1:
                out.append(f"TrainingArguments.{key}: must be at least 1, got {getattr(self, key)}")
        if not self.learning_rate > 0 or math.isinf(self.learning_rate):
            out.append(f"TrainingArguments.learning_rate: must be a positive number, got {self.learning_rate}")
        for key, allowed in (("save_strategy", ("no", "steps", "epoch", "best")),
                             ("eval_strategy", ("no", "steps", "epoch"))):
            if getattr(self, key) not in allowed:
                out.append(f"TrainingArguments.{key}: {getattr(self, key)!r} is not one of {', '.join(allowed)}")
        if self.save_steps <= 0:
            out.append(f"TrainingArguments.save_steps: must be positive, got {self.save_steps}")
        if self.save_total_limit is not None and self.save_total_limit < 1:
            out.append("TrainingArguments.save_total_limit: keep at least 1 checkpoint (or null for all)")
        if not self.output_dir:
            out.append("TrainingArguments.output_dir: must name the directory the adapter is written to")
        return out


@dataclass
class DataCollator(Section):
    """KAITO's DataCollatorForLanguageModeling keys. We train causal LMs: mlm is always off."""

    SECTION: ClassVar[str] = "DataCollator"

    mlm: bool = _help("Accepted for KAITO compatibility (its template sets true); causal LMs have no masked "
                      "LM objective, so it is treated as false, as KAITO does when the tokenizer has no mask token.", False)
    mlm_probability: float | None = _help("Accepted for KAITO compatibility; unused.", 0.15)
    whole_word_mask: bool = _help("Accepted for KAITO compatibility; unused.", False)
    mask_replace_prob: float = _help("Accepted for KAITO compatibility; unused.", 0.8)
    random_replace_prob: float = _help("Accepted for KAITO compatibility; unused.", 0.1)
    pad_to_multiple_of: int | None = _help("Pad batches to a multiple of this (when padding-free is off).", None)
    return_tensors: str = _help("Only pt.", "pt")
    seed: int | None = _help("Accepted for KAITO compatibility; unused.", None)

    def problems(self) -> list[str]:
        if self.return_tensors != "pt":
            return [f"DataCollator.return_tensors: {self.return_tensors!r} is not supported; use pt"]
        return []


@dataclass
class DatasetConfig(Section):
    """Where the data is and how it is laid out (KAITO's keys)."""

    SECTION: ClassVar[str] = "DatasetConfig"

    dataset_path: str | None = _help(
        "A data file or directory; relative paths are under --data (default /mnt/data). Default: the first "
        "data file found under --data.", None)
    dataset_extension: str | None = _help("parquet, jsonl, json or csv when the file name does not say.", None)
    shuffle_dataset: bool = _help("Shuffle the examples before splitting.", True)
    shuffle_seed: int = _help("Seed of the shuffle and of the train/test split.", 42)
    context_column: str | None = _help("Column with the prompt (prompt/response layouts).", None)
    response_column: str = _help("Column with the response or the whole text.", "text")
    messages_column: str | None = _help("Column with chat messages (role/content lists).", None)
    train_test_split: float = _help(
        "Fraction used for training; the rest is the held-out evaluation set. 1 keeps all for training.", 0.8)

    def problems(self) -> list[str]:
        if not 0.0 < self.train_test_split <= 1.0:
            return [f"DatasetConfig.train_test_split: must be in (0, 1], got {self.train_test_split}"]
        return []


@dataclass
class BundledConfig(Section):
    """Our extensions (KAITO ignores this section, so the ConfigMap still works for its engine)."""

    SECTION: ClassVar[str] = "BundledConfig"

    max_seq_length: int = _help("Longest example in tokens; longer examples are dropped and counted.", 2048)
    validation_path: str | None = _help(
        "Validation data file or directory; when set it is the evaluation set instead of a held-out split.", None)
    checkpoint_dir: str | None = _help(
        "Where checkpoints go (e.g. the Job's PVC); default: <output_dir>/checkpoints.", None)
    continue_from: str | None = _help(
        "An adapter directory (adapter_config.json + weights) to keep training; its LoRA settings are used.", None)
    padding_free: bool = _help("Concatenate a batch's examples without padding (faster).", True)
    max_tokens_per_batch: int | None = _help(
        "Token budget of one padding-free batch per device: examples are packed in order until the next would "
        "exceed it (a longer example goes alone). TrainingArguments.per_device_train_batch_size is then unused. "
        "null: per_device_train_batch_size examples per batch.", None)
    max_examples_per_batch: int | None = _help(
        "With max_tokens_per_batch: at most this many examples in one batch (a spec's batchSize); null: no cap.", None)
    evaluate: bool = _help("Evaluate base model and adapter on the evaluation set into metrics.json.", True)
    attn_implementation: str | None = _help("Attention kernel: sdpa, flash_attention_2, eager.", "sdpa")

    def problems(self) -> list[str]:
        out = []
        if self.max_seq_length < 16:
            out.append(f"BundledConfig.max_seq_length: must be at least 16, got {self.max_seq_length}")
        for key in ("max_tokens_per_batch", "max_examples_per_batch"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                out.append(f"BundledConfig.{key}: must be at least 1 (or null), got {getattr(self, key)}")
        if self.max_tokens_per_batch is not None and not self.padding_free:
            out.append("BundledConfig.max_tokens_per_batch: needs padding_free true (a padded batch costs its "
                       "longest example times its size); remove max_tokens_per_batch or set padding_free: true")
        return out


SECTIONS: tuple[type[Section], ...] = (
    ModelConfig, QuantizationConfig, LoraConfig, TrainingArguments, DataCollator, DatasetConfig, BundledConfig,
)


@dataclass
class TrainerConfig:
    """The whole training_config, one attribute per section."""

    model: ModelConfig
    quantization: QuantizationConfig
    lora: LoraConfig
    training: TrainingArguments
    collator: DataCollator
    dataset: DatasetConfig
    bundled: BundledConfig
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        problems: list[str] = []
        # KAITO accepts load_in_4bit/8bit in ModelConfig too; there it means the same.
        for key in ("load_in_4bit", "load_in_8bit"):
            if getattr(self.model, key):
                setattr(self.quantization, key, True)
        if self.quantization.load_in_4bit and self.quantization.load_in_8bit:
            problems.append("ModelConfig/QuantizationConfig: load_in_4bit and load_in_8bit are both set; keep one")
        if self.bundled.continue_from and self.lora.target_modules is not None:
            self.warnings.append("LoraConfig is ignored with BundledConfig.continue_from: the adapter's own "
                                 "configuration is kept")
        if problems:
            raise ConfigError(problems)

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.bundled.checkpoint_dir or Path(self.training.output_dir) / "checkpoints")


def _parse_section(cls: type[Section], raw: Any, problems: list[str], warnings: list[str]) -> Section | None:
    name = cls.SECTION
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(f"{name}: must be a mapping of keys to values, got {type(raw).__name__}")
        return None
    own = {f.name: f for f in fields(cls) if f.name != "extra"}
    known = set(own) | set(cls.PASSTHROUGH) | set(cls.LEGACY)
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in raw.items():
        key = str(key)
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; see docs/trainer.md for the keys of {name}"
            problems.append(f"{name}.{key}: unknown key{hint}")
            continue
        if key in cls.LEGACY:
            new = cls.LEGACY[key]
            if new is None:
                warnings.append(f"{name}.{key}: has no effect with transformers 5; ignored")
                continue
            warnings.append(f"{name}.{key}: renamed {new} in transformers 5; read as {new}")
            if new in raw:
                problems.append(f"{name}.{key}: both {key} and {new} are set; keep {new}")
                continue
            key = new
        spec = own[key].type if key in own else cls.PASSTHROUGH[key]
        ok, converted = _coerce(spec, value)
        if not ok:
            hint = " (quote it: YAML reads yes/no/on/off as booleans)" if isinstance(value, bool) else \
                " (write a finite number below 2**63; NaN and infinity are not allowed)" if _numeric(value) else ""
            problems.append(f"{name}.{key}: expected {_describe(spec)}, got {value!r}{hint}")
            continue
        (kwargs if key in own else extra)[key] = converted
    if name == "DataCollator" and kwargs.get("mlm"):
        warnings.append("DataCollator.mlm: true is read as false; causal language models are trained")
        kwargs["mlm"] = False
    try:
        return cls(**kwargs, extra=extra)
    except ConfigError as err:
        problems.extend(err.problems)
        return None


def parse_config(data: Any, source: str = "training_config.yaml") -> TrainerConfig:
    """Check a parsed training_config.yaml document; raise ConfigError listing every problem."""
    if not isinstance(data, dict) or "training_config" not in data:
        raise ConfigError(["the document must have a top-level `training_config:` mapping"], source)
    body = data["training_config"] or {}
    if not isinstance(body, dict):
        raise ConfigError(["training_config: must be a mapping of section names to sections"], source)
    problems: list[str] = []
    warnings: list[str] = []
    names = [cls.SECTION for cls in SECTIONS]
    for key in data:
        if key != "training_config":
            problems.append(f"{key}: unknown top-level key; only training_config is read")
    for key in body:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"sections are {', '.join(names)}"
            problems.append(f"training_config.{key}: unknown section; {hint}")
    parsed = [_parse_section(cls, body.get(cls.SECTION), problems, warnings) for cls in SECTIONS]
    if problems:
        raise ConfigError(problems, source)
    try:
        return TrainerConfig(*parsed, warnings=warnings)
    except ConfigError as err:
        raise ConfigError(err.problems, source) from None


def load_config(path_or_text: str | Path) -> TrainerConfig:
    """Load training_config.yaml from a path, or from YAML text (anything containing a newline)."""
    text, source = path_or_text, "training_config.yaml"
    try:
        if isinstance(path_or_text, Path) or "\n" not in path_or_text:
            source = str(path_or_text)
            try:
                text = safe_yaml.decode(safe_yaml.read_capped(Path(path_or_text), safe_yaml.MAX_BYTES, "the config"))
            except OSError as err:
                raise ConfigError([f"cannot read the config file: {err.strerror}; pass --config with the path of "
                                   "training_config.yaml"], source) from None
        data = safe_yaml.load(str(text))
    except safe_yaml.Refused as err:
        raise ConfigError([f"line {err.line}: {err.message} ({err.hint})"], source) from None
    return parse_config(data, source)
