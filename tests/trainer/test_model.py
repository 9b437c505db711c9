"""LoRA placement: every linear layer of the architecture by default, clear errors otherwise."""

from __future__ import annotations

import pytest
import torch

from trainer.config import ConfigError, parse_config
from trainer.model import attach_adapter, linear_module_names, load_base_model, resolve_dtype

PHI3_LINEAR = {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}


def config(model_dir, **sections):
    body = {"ModelConfig": {"pretrained_model_name_or_path": str(model_dir)}, **sections}
    return parse_config({"training_config": body})


def adapted(model) -> set[str]:
    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")}


@pytest.mark.parametrize("quantization", [{}, {"load_in_4bit": True}])
def test_default_targets_are_all_linear_layers_but_the_head(tiny_model_dir, quantization):
    cfg = config(tiny_model_dir, QuantizationConfig=quantization)
    base = load_base_model(cfg)
    assert linear_module_names(base) == PHI3_LINEAR
    model = attach_adapter(base, cfg)
    assert adapted(model) == PHI3_LINEAR
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)


def test_kaito_style_targets_that_do_not_exist_are_an_error(tiny_model_dir):
    cfg = config(tiny_model_dir, LoraConfig={"target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]})
    with pytest.raises(ConfigError, match="LoraConfig.target_modules: q_proj, k_proj, v_proj match no linear"):
        attach_adapter(load_base_model(cfg), cfg)


def test_explicit_targets_are_respected(tiny_model_dir):
    cfg = config(tiny_model_dir, LoraConfig={"target_modules": ["qkv_proj"]})
    assert adapted(attach_adapter(load_base_model(cfg), cfg)) == {"qkv_proj"}


def test_half_precision_falls_back_to_float32_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_dtype("bfloat16") is torch.float32
    assert resolve_dtype("float32") is torch.float32
    assert resolve_dtype(None) == "auto"


@pytest.mark.parametrize("rank", [0, 3])
def test_each_rank_loads_the_whole_model_onto_its_own_gpu_whatever_device_map_says(tiny_model_dir, monkeypatch,
                                                                                   rank):
    """No GPU here: CUDA's presence is simulated and from_pretrained's arguments are captured."""
    from types import SimpleNamespace

    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("LOCAL_RANK", str(rank))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    chosen, loaded = [], {}
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained",
                        lambda path, **kwargs: loaded.update(kwargs) or SimpleNamespace(config=SimpleNamespace()))
    load_base_model(config(tiny_model_dir, ModelConfig={"pretrained_model_name_or_path": str(tiny_model_dir),
                                                        "device_map": "auto", "torch_dtype": "float32"}))
    assert chosen == [rank] and loaded["device_map"] == {"": rank}
