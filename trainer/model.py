"""Load the base model and tokenizer, and put a trainable LoRA adapter on it."""

from __future__ import annotations

import codecs
import logging
from pathlib import Path

import torch
from torch import nn

from trainer.config import ConfigError, TrainerConfig

log = logging.getLogger(__name__)


def bf16_supported() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_dtype(name: str | None) -> torch.dtype | str:
    """The dtype to load weights in; half precision only where a GPU computes in it."""
    if name in (None, "auto"):
        return "auto"
    if name == "bfloat16" and not bf16_supported():
        log.info("no bf16-capable GPU: computing in float32 instead of bfloat16")
        return torch.float32
    if name == "float16" and not torch.cuda.is_available():
        log.info("no GPU: computing in float32 instead of float16")
        return torch.float32
    return getattr(torch, name)


def check_model_path(cfg: TrainerConfig) -> None:
    path = Path(cfg.model.pretrained_model_name_or_path)
    if cfg.model.local_files_only and not (path / "config.json").is_file():
        raise ConfigError([f"ModelConfig.pretrained_model_name_or_path: {path} has no config.json; point it at "
                           "the base model's weights directory"])


def load_tokenizer(cfg: TrainerConfig):
    from transformers import AutoTokenizer

    check_model_path(cfg)
    m = cfg.model
    tokenizer = AutoTokenizer.from_pretrained(
        m.pretrained_model_name_or_path, local_files_only=m.local_files_only, revision=m.revision,
        trust_remote_code=m.trust_remote_code, cache_dir=m.cache_dir,
    )
    if m.chat_template:
        # KAITO's rule: text with braces or newlines is the template itself, anything else a file.
        if any(c in m.chat_template for c in "{}\n"):
            tokenizer.chat_template = codecs.decode(m.chat_template, "unicode_escape")
        else:
            try:
                tokenizer.chat_template = Path(m.chat_template).read_text()
            except OSError as err:
                raise ConfigError([f"ModelConfig.chat_template: cannot read {m.chat_template}: {err.strerror}"]) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _bnb_config(cfg: TrainerConfig, compute_dtype: torch.dtype | str):
    from transformers import BitsAndBytesConfig

    q = cfg.quantization
    if q.bnb_4bit_compute_dtype:
        compute = resolve_dtype(q.bnb_4bit_compute_dtype)
    else:
        compute = compute_dtype if isinstance(compute_dtype, torch.dtype) else torch.float32
    return BitsAndBytesConfig(
        load_in_4bit=q.load_in_4bit, load_in_8bit=q.load_in_8bit,
        llm_int8_threshold=q.llm_int8_threshold, llm_int8_skip_modules=q.llm_int8_skip_modules,
        llm_int8_enable_fp32_cpu_offload=q.llm_int8_enable_fp32_cpu_offload,
        llm_int8_has_fp16_weight=q.llm_int8_has_fp16_weight, bnb_4bit_compute_dtype=compute,
        bnb_4bit_quant_type=q.bnb_4bit_quant_type, bnb_4bit_use_double_quant=q.bnb_4bit_use_double_quant,
        bnb_4bit_quant_storage=q.bnb_4bit_quant_storage,
    )


def check_kernels(cfg: TrainerConfig) -> None:
    """Kernels the config asks for must be importable and have a GPU: a missing one is a configuration
    error (exit 2, the Job does not retry) rather than an ImportError half-way through loading."""
    import importlib.util

    wanted = []
    if cfg.bundled.attn_implementation == "flash_attention_2":
        wanted.append(("BundledConfig.attn_implementation: flash_attention_2", "flash_attn", "flash-attn",
                       "set attn_implementation: sdpa"))
    if cfg.training.extra.get("use_liger_kernel"):
        wanted.append(("TrainingArguments.use_liger_kernel", "liger_kernel", "liger-kernel",
                       "set use_liger_kernel: false"))
    problems = []
    for key, module, package, fix in wanted:
        if not torch.cuda.is_available():
            problems.append(f"{key}: needs a CUDA GPU and this machine has none; {fix}")
        elif importlib.util.find_spec(module) is None:
            problems.append(f"{key}: the {package} package is not installed in this image; use the trainer image "
                            f"built from trainer/Dockerfile, or {fix}")
    if problems:
        raise ConfigError(problems)


def load_base_model(cfg: TrainerConfig) -> nn.Module:
    """The frozen base model, quantized when QuantizationConfig asks for it.

    On a GPU the whole model goes onto this process's own GPU (LOCAL_RANK), whatever
    ModelConfig.device_map says: one process per GPU trains data-parallel, whereas `auto`
    would spread one model over the node's GPUs and leave all but one idle at any moment.
    """
    from transformers import AutoModelForCausalLM

    from trainer.distributed import local_rank

    check_model_path(cfg)
    m = cfg.model
    dtype = resolve_dtype(m.torch_dtype)
    device_map = None
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank())
        device_map = {"": local_rank()}
    kwargs = dict(
        dtype=dtype, device_map=device_map,
        local_files_only=m.local_files_only, revision=m.revision, trust_remote_code=m.trust_remote_code,
        cache_dir=m.cache_dir, force_download=m.force_download, proxies=m.proxies,
        attn_implementation=cfg.bundled.attn_implementation,
    )
    if cfg.quantization.enabled:
        kwargs["quantization_config"] = _bnb_config(cfg, dtype)
    model = AutoModelForCausalLM.from_pretrained(m.pretrained_model_name_or_path, **kwargs)
    model.config.use_cache = False  # the KV cache only serves generation
    return model


def linear_module_names(model: nn.Module) -> set[str]:
    """Leaf names of the linear layers LoRA can adapt (quantized ones included), without the output head."""
    head = model.get_output_embeddings()
    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and module is not head}


def _check_targets(model: nn.Module, targets: str | list[str]) -> None:
    if isinstance(targets, str):
        return  # a regular expression or peft's "all-linear": peft reports what matches nothing
    available = linear_module_names(model)
    missing = [t for t in targets if t not in available]
    if missing:
        raise ConfigError([
            f"LoraConfig.target_modules: {', '.join(missing)} match no linear layer of this model; its linear "
            f"layers are {', '.join(sorted(available))} (or leave target_modules out to adapt all of them)"])


def attach_adapter(model: nn.Module, cfg: TrainerConfig):
    """A PeftModel whose only trainable weights are the adapter's."""
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training

    if cfg.quantization.enabled:
        # Casts norms to fp32 and freezes the base; gradient checkpointing is left to the Trainer.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if cfg.bundled.continue_from:
        adapter = Path(cfg.bundled.continue_from)
        if not (adapter / "adapter_config.json").is_file():
            raise ConfigError([f"BundledConfig.continue_from: {adapter} has no adapter_config.json; point it at "
                               "the directory of an adapter this trainer (or KAITO) wrote"])
        log.info("continuing training of the adapter in %s", adapter)
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
    lora = cfg.lora
    targets = lora.target_modules if lora.target_modules is not None else "all-linear"
    _check_targets(model, targets)
    peft_config = LoraConfig(
        r=lora.r, lora_alpha=lora.lora_alpha, lora_dropout=lora.lora_dropout, target_modules=targets,
        exclude_modules=lora.exclude_modules, bias=lora.bias, use_rslora=lora.use_rslora, use_dora=lora.use_dora,
        modules_to_save=lora.modules_to_save, init_lora_weights=lora.init_lora_weights, task_type="CAUSAL_LM",
        **lora.extra,
    )
    return get_peft_model(model, peft_config)
