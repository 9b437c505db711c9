"""The bundled trainer's memory plan (infra/catalog.py plan_tuning) and how the renderer applies it:
token budget per GPU, activation checkpointing only where the budget needs it, one rank per GPU."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import yaml

from infra import catalog
from infra.render import bundled, tuning
from infra.specs import load_environment

A100_80 = "Standard_NC24ads_A100_v4"
A10 = "Standard_NV36ads_A10_v5"


def plan(preset="phi-3-mini-128k-instruct", method="qlora", instance=A100_80, max_seq_length=2048, rank=16):
    return catalog.plan_tuning(preset, method, "4bit" if method == "qlora" else None, rank, 0.05, max_seq_length,
                               instance, fused_loss=True)


def test_phi3_mini_on_one_a100_packs_thousands_of_tokens_without_checkpointing():
    p = plan()
    assert not p.gradient_checkpointing
    assert 8192 <= p.max_tokens_per_batch <= catalog.PACK_CAP_TOKENS
    assert p.peak_gib <= 0.9 * p.gpu_memory_gib


def test_a_small_gpu_trades_recomputation_for_a_budget():
    p = plan(instance=A10)
    assert p.gradient_checkpointing and p.max_tokens_per_batch >= 2048
    assert p.peak_gib <= 24


@pytest.mark.parametrize("preset", sorted(catalog.architectures()))
def test_the_budget_holds_the_longest_example_and_grows_with_the_gpu(preset):
    small, large = plan(preset, instance=A10, max_seq_length=4096), plan(preset, max_seq_length=4096)
    assert small.max_tokens_per_batch >= 4096 and large.max_tokens_per_batch >= 4096
    assert large.peak_gib <= large.gpu_memory_gib or large.gradient_checkpointing
    # more memory never means recomputing where a smaller GPU does not
    assert not (large.gradient_checkpointing and not small.gradient_checkpointing)


def _kaito_catalog() -> dict[str, dict]:
    models = yaml.safe_load((catalog.DATA / "kaito" / "model_catalog.yaml").read_text())["models"]
    return {m["name"].lower(): m for m in models}


def _parameters(arch: dict) -> int:
    """Weights of a decoder with this shape: attention (fused or not, same count), SwiGLU MLP, two norms per
    layer, embeddings and head (one matrix when tied), final norm."""
    h, head_dim = arch["hidden"], arch["hidden"] // arch["heads"]
    qkv = (arch["heads"] + 2 * arch["kv_heads"]) * head_dim
    layer = h * qkv + (qkv if arch.get("qkv_bias") else 0) + arch["heads"] * head_dim * h + 3 * h * arch["intermediate"] + 2 * h
    return arch["layers"] * layer + (1 if arch.get("tied") else 2) * arch["vocab"] * h + h


@pytest.mark.parametrize("preset", sorted(catalog.architectures()))
def test_every_shape_matches_kaitos_catalog_and_its_weight_files(preset):
    arch, entry = catalog.architectures()[preset], _kaito_catalog()[catalog.architectures()[preset]["catalog"]]
    assert (arch["hidden"], arch["layers"], arch["heads"], arch["kv_heads"]) == (
        entry["hiddenSize"], entry["numHiddenLayers"], entry["numAttentionHeads"], entry["numKeyValueHeads"])
    assert entry["modelFileSize"].endswith("Gi")
    bf16_parameters = float(entry["modelFileSize"][:-2]) * 2**30 / 2
    assert _parameters(arch) == pytest.approx(bf16_parameters, rel=0.002)
    assert catalog.preset(preset).params_b == pytest.approx(_parameters(arch) / 1e9, rel=0.02)  # data/presets.yaml


def test_the_weight_file_check_tells_tied_from_untied_embeddings():
    """It can fail: Phi-4-mini's shape with a second (untied) embedding matrix misses its files by 16%."""
    arch = dict(catalog.architectures()["phi-4-mini-instruct"], tied=False)
    files = float(_kaito_catalog()[arch["catalog"]]["modelFileSize"][:-2]) * 2**30 / 2
    assert _parameters(arch) / files - 1 > 0.15


def test_a_higher_rank_or_bf16_weights_leave_less_room():
    assert plan(rank=256).max_tokens_per_batch <= plan(rank=8).max_tokens_per_batch
    assert plan(method="lora").max_tokens_per_batch <= plan(method="qlora").max_tokens_per_batch


def test_unknown_preset_or_size_has_no_plan():
    assert plan(preset="no-such-model") is None and plan(instance="Standard_D4s_v5") is None


def test_lora_fits_where_bf16_weights_do():
    assert catalog.lora_fits("phi-3-mini-128k-instruct", A100_80)
    assert not catalog.lora_fits("qwen2.5-coder-32b-instruct", A10)


@pytest.fixture(scope="module")
def bundled_workload():
    env = load_environment("dev")
    w = next(w for w in env.workloads if w.name == "phi3-dolly-bundled")
    return env, w


def with_spec(w, **changes):
    spec = copy.deepcopy(w.spec)
    for path, value in changes.items():
        node = spec
        *parents, key = path.split(".")
        for part in parents:
            node = node[part]
        if value is None:
            node.pop(key, None)
        else:
            node[key] = value
    return dataclasses.replace(w, spec=spec)


def test_the_rendered_config_uses_the_plan_and_the_spec_batch_size_caps_examples(bundled_workload):
    _, w = bundled_workload
    config = tuning.training_config(with_spec(w, **{"hyperparameters.batchSize": None}))["training_config"]
    expected = plan(rank=w.spec["hyperparameters"]["lora"]["r"])
    assert config["BundledConfig"]["max_tokens_per_batch"] == expected.max_tokens_per_batch
    assert "max_examples_per_batch" not in config["BundledConfig"]  # no batchSize: the budget alone decides
    assert config["TrainingArguments"]["gradient_checkpointing"] is expected.gradient_checkpointing
    small = tuning.training_config(with_spec(w, **{"placement.instanceType": A10}))["training_config"]
    assert small["TrainingArguments"]["gradient_checkpointing"] is True
    assert small["BundledConfig"]["max_examples_per_batch"] == w.spec["hyperparameters"]["batchSize"]


@pytest.mark.parametrize("instance, gpus", [(A100_80, 1), ("Standard_NC48ads_A100_v4", 2), ("Standard_ND96amsr_A100_v4", 8)])
def test_the_job_starts_one_trainer_process_per_gpu(bundled_workload, instance, gpus):
    env, w = bundled_workload
    job = bundled.job(env, with_spec(w, **{"placement.instanceType": instance}), {})
    pod = job["spec"]["template"]["spec"]
    trainer = next(c for c in pod["initContainers"] + pod["containers"] if c["name"] == "trainer")
    assert trainer["args"][:2] == ["--nproc-per-node", str(gpus)]
    assert trainer["resources"]["limits"]["nvidia.com/gpu"] == gpus
    config = yaml.safe_load(tuning.config_map(env, w)["data"]["training_config.yaml"])
    assert config["training_config"]["BundledConfig"]["attn_implementation"] == "flash_attention_2"


def test_plan_suggests_lora_where_qlora_is_not_needed_and_never_applies_it(bundled_workload):
    _, w = bundled_workload
    hint = catalog.method_hint(w.spec)
    assert w.spec["method"] == "qlora" and hint.startswith("method: lora also fits one GPU of Standard_NC24ads_A100_v4")
    # phi-4 in bf16 (about 37 GiB) does not fit an A10's 24 GiB: qlora is needed there
    assert catalog.method_hint(with_spec(w, **{"placement.instanceType": A10, "baseModel": "phi-4"}).spec) is None
    assert catalog.method_hint(with_spec(w, method="lora").spec) is None


def test_validate_suggests_lora_as_a_notice_naming_file_line_and_field_and_exits_0(bundled_workload, capsys,
                                                                                    tmp_path, monkeypatch):
    import shutil

    from infra.cli import main

    _, w = bundled_workload
    before = w.path.read_bytes()
    line = next(i for i, text in enumerate(before.decode().splitlines(), 1) if text.strip().startswith("method:"))
    monkeypatch.chdir(w.path.parents[3])  # the repository: paths are shown relative to it
    shown = w.path.relative_to(w.path.parents[3])
    assert main(["validate", str(shown)]) == 0
    out, err = capsys.readouterr()
    assert out == "ok: 1 workload in 1 environment\n"  # the result on stdout is unchanged
    assert err.startswith(f"{shown}:{line}: $.spec.method: notice: method: lora also fits one GPU of "
                          "Standard_NC24ads_A100_v4"), err
    assert "the method is never changed for you" in err and w.path.read_bytes() == before
    # a file asked for without a suggestion gets none from its neighbours
    assert main(["validate", str(shown.with_name("phi3-dolly.yaml"))]) == 0
    assert capsys.readouterr().err == ""
    # where bf16 LoRA is chosen already there is nothing to suggest (where it does not fit: the test above)
    tree = tmp_path / "workloads"
    shutil.copytree(w.path.parents[1], tree / "dev")
    copy = tree / "dev" / w.path.relative_to(w.path.parents[1])
    assert "method: qlora\n  quantization: 4bit\n" in before.decode()
    copy.write_text(before.decode().replace("method: qlora\n  quantization: 4bit\n", "method: lora\n"))
    assert main(["validate", str(copy)]) == 0
    assert "notice" not in capsys.readouterr().err


def _saved_activation_bytes(model_class: str, lora_dropout: float, tokens: int, arch: dict) -> tuple[float, int]:
    """Bytes of the tensors autograd keeps for backward inside the decoder layers of a model of this transformers
    class in bf16 with LoRA on every linear layer (peft's "all-linear", the trainer's default), run under bf16
    autocast as the Trainer runs a bf16 step (the weights themselves excluded); and peft's count of trainable
    parameters."""
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config_class = getattr(transformers, model_class.replace("ForCausalLM", "Config"))
    config = config_class(vocab_size=arch["vocab"], hidden_size=arch["hidden"], intermediate_size=arch["intermediate"],
                          num_hidden_layers=arch["layers"], num_attention_heads=arch["heads"],
                          num_key_value_heads=arch["kv_heads"], max_position_embeddings=tokens, pad_token_id=0,
                          bos_token_id=0, eos_token_id=0)
    config._attn_implementation = "sdpa"  # on the CPU a flash kernel: it saves q, k, v, output, log-sum-exp
    model = get_peft_model(getattr(transformers, model_class)(config).to(torch.bfloat16), LoraConfig(
        r=16, lora_alpha=32, lora_dropout=lora_dropout, task_type="CAUSAL_LM", target_modules="all-linear"))
    model.train()
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    inside = [False]
    for layer in model.base_model.model.model.layers:
        layer.register_forward_pre_hook(lambda *_: inside.__setitem__(0, True))
        layer.register_forward_hook(lambda *_: inside.__setitem__(0, False))
    saved, alive = {}, []

    def pack(tensor):
        if inside[0] and tensor.untyped_storage().data_ptr() not in weights:
            alive.append(tensor)  # held, so that no other tensor can reuse its address while we count
            saved[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    ids = torch.randint(0, arch["vocab"], (1, tokens))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
        model(input_ids=ids, labels=ids)
    return sum(saved.values()), model.get_nb_trainable_parameters()[0]


@pytest.mark.parametrize("model_class, fused, kv_heads", [
    ("Phi3ForCausalLM", True, 6),  # phi-3-mini: fused qkv and gate_up, as many key/value heads as query heads
    ("Phi3ForCausalLM", True, 2),  # phi-3-medium, phi-4: fused, grouped-query attention
    ("MistralForCausalLM", False, 2),  # separate q/k/v and gate/up, grouped-query attention
    ("Qwen2ForCausalLM", False, 2),  # as Mistral, with biases on q, k and v
])
@pytest.mark.parametrize("lora_dropout", [0.0, 0.05])
def test_the_activation_estimate_is_at_or_a_little_above_what_autograd_saves(model_class, fused, kv_heads,
                                                                             lora_dropout):
    """Calibration on the CPU: phi-3-mini's ratio of intermediate to hidden size (8/3), two layers. The bytes
    per token come from two lengths, so what does not grow with the tokens (casts of the adapter) cancels.
    peft's own count of trainable parameters is the oracle for the adapter's size."""
    arch = {"hidden": 384, "intermediate": 1024, "layers": 2, "heads": 6, "kv_heads": kv_heads, "vocab": 1000,
            "fused": fused}
    (short, adapter), (long, _) = (_saved_activation_bytes(model_class, lora_dropout, n, arch) for n in (256, 1024))
    measured = (long - short) / (1024 - 256)
    estimate = catalog._bytes_per_token(arch, checkpointing=False, lora_dropout=lora_dropout > 0, fused_loss=True)
    assert measured <= estimate <= 1.25 * measured, (measured, estimate)
    assert adapter == catalog.adapter_parameters(arch, 16)


def test_every_preset_has_a_known_projection_layout():
    """From the model class KAITO's catalog names: Phi3ForCausalLM fuses, Mistral and Qwen2 do not."""
    layouts = {name: arch["fused"] for name, arch in catalog.architectures().items()}
    assert {name for name, fused in layouts.items() if fused} == {n for n in layouts if n.startswith("phi-")}


def test_the_job_fails_at_once_exactly_on_the_trainers_config_error_code(bundled_workload):
    """Data and config errors exit 2 (trainer/__main__.py) and the Job fails without retrying on 2 alone:
    1 (unexpected, e.g. an I/O error) and 143 (SIGTERM, checkpointed) are retried."""
    from trainer.__main__ import EXIT_CONFIG, EXIT_FAILED, EXIT_INTERRUPTED

    env, w = bundled_workload
    rules = bundled.job(env, w, {})["spec"]["podFailurePolicy"]["rules"]
    fail = [r for r in rules if r["action"] == "FailJob"]
    assert fail == [{"action": "FailJob", "onExitCodes": {"containerName": "trainer", "operator": "In",
                                                          "values": [EXIT_CONFIG]}}]
    assert not {EXIT_FAILED, EXIT_INTERRUPTED} & set(fail[0]["onExitCodes"]["values"])
