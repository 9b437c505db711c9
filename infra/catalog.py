"""Facts the validator, renderer, Pulumi program and cost estimate share.

KAITO's preset list (vendored unchanged in `data/kaito/`), our tuning table
(`data/presets.yaml`) and the Azure GPU VM sizes (`data/skus.yaml`). Loaded once
and cached: the validator calls these for every workload.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

DATA = resources.files("infra") / "data"
# KAITO's CRDs, vendored unchanged (data/kaito/SOURCE.md), by the kind they define.
CRD_FILES = {"Workspace": "kaito.sh_workspaces.yaml", "InferenceSet": "kaito.sh_inferencesets.yaml"}


def _load(*parts: str) -> Any:
    node = DATA
    for part in parts:
        node = node / part
    return yaml.safe_load(node.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Sku:
    name: str
    gpus: int
    gpu_memory_gib: int = 0
    gpu: str = ""
    cuda: float = 0.0  # KAITO's CUDA compute capability for the size; 0: not an NVIDIA GPU
    vcpus: int = 0
    memory_gib: int = 0
    ephemeral_os_disk: bool = False
    temp_disk_gib: int | None = None  # None: not checked
    cache_disk_gib: int | None = None

    def ephemeral_os_disk_fits(self, size_gib: int) -> bool:
        """AKS places an ephemeral OS disk on the cache where the size has one, else on the temp disk."""
        if not self.ephemeral_os_disk or self.temp_disk_gib is None or self.cache_disk_gib is None:
            return False
        return size_gib <= (self.cache_disk_gib or self.temp_disk_gib)

    @property
    def total_gpu_memory_gib(self) -> float:
        return self.gpus * self.gpu_memory_gib


@dataclass(frozen=True)
class Preset:
    name: str
    tag: str
    tuning: bool
    params_b: float | None = None
    disk: str | None = None
    download_auth: bool = False  # KAITO downloads it from Hugging Face with a token (presetOptions.modelAccessSecret)


@cache
def skus() -> dict[str, Sku]:
    return {name: Sku(name=name, **fields) for name, fields in _load("skus.yaml")["skus"].items()}


def sku(name: str) -> Sku | None:
    return skus().get(name)


def gpu_skus() -> list[str]:
    """The GPU sizes KAITO can run on Azure (data/skus.yaml mirrors KAITO's SKU table)."""
    return sorted(name for name, s in skus().items() if s.gpus)


@cache
def _tuning_table() -> dict[str, Any]:
    return _load("presets.yaml")


@cache
def presets() -> dict[str, Preset]:
    tuning = _tuning_table()["presets"]
    accepted = set(_tuning_table()["kaito_preset_names"])
    out = {}
    for model in _load("kaito", "supported_models.yaml")["models"]:
        name = model["name"]
        if name not in accepted:  # "base" (KAITO's runtime image), falcon-*, the deprecated phi-2
            continue
        extra = tuning.get(name, {})
        out[name] = Preset(
            name=name,
            tag=str(model.get("tag", "")),
            tuning=bool(extra.get("tuning", False)),
            params_b=extra.get("params_b"),
            disk=extra.get("disk"),
            download_auth=bool(model.get("downloadAuthRequired", False)),
        )
    return out


def preset(name: str) -> Preset | None:
    return presets().get(name)


def supported_presets() -> list[str]:
    """Every preset KAITO can serve, sorted."""
    return sorted(presets())


def transformers_presets() -> list[str]:
    """Presets KAITO can serve with the transformers runtime (see data/presets.yaml)."""
    return sorted(_tuning_table()["transformers_inference"])


def tuning_presets() -> list[str]:
    return sorted(name for name, p in presets().items() if p.tuning)


def tuning_memory_gib(preset_name: str, method: str, quantization: str | None = None) -> float | None:
    """Estimated GPU memory one tuning run of this preset needs (see data/presets.yaml)."""
    p = preset(preset_name)
    if p is None or p.params_b is None:
        return None
    table = _tuning_table()
    key = "lora" if method == "lora" else f"qlora-{quantization or '4bit'}"
    return round(p.params_b * table["bytes_per_param"][key] + table["tuning_overhead_gib"][method], 1)


def serving_memory_gib(preset_name: str) -> float | None:
    """The bf16 weights: the least GPU memory serving the preset needs (KAITO's webhook checks the same bound)."""
    p = preset(preset_name)
    if p is None or p.params_b is None:
        return None
    return round(p.params_b * _tuning_table()["bytes_per_param"]["lora"], 1)


@cache
def crd_schema(kind: str, version: str) -> dict[str, Any] | None:
    """The openAPIV3Schema KAITO's CRD gives `kind` at `version`; None if KAITO serves no such version."""
    crd = _load("kaito", CRD_FILES[kind])
    return next((v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"]
                 if v["name"] == version and v.get("served")), None)


# ---------------------------------------------------------------------------------------------
# Memory plan of one bundled-trainer process (one GPU): an estimate, in bytes, of what peaks during
# a training step, used to size the token budget and decide on activation checkpointing.
# ---------------------------------------------------------------------------------------------
PACK_CAP_TOKENS = 16384  # more tokens per step no longer speeds a saturated GPU up; it only cuts the step count
MIN_PACK_WITHOUT_CHECKPOINTING = 4096  # below this, recomputing activations beats a small pack
_GIB = 2**30


@dataclass(frozen=True)
class TuningPlan:
    max_tokens_per_batch: int
    gradient_checkpointing: bool
    peak_gib: float  # estimated peak GPU memory at that budget
    gpu_memory_gib: float


# Whether a decoder layer fuses its projections, by the model class KAITO's catalog names for the preset: Phi-3
# (Phi-4 too) has one qkv_proj and one gate_up_proj (transformers models/phi3/modeling_phi3.py); Mistral and Qwen2
# have separate q_proj, k_proj, v_proj, gate_proj and up_proj (models/mistral/modeling_mistral.py,
# models/qwen2/modeling_qwen2.py).
_FUSED_PROJECTIONS = {"Phi3ForCausalLM": True, "MistralForCausalLM": False, "Qwen2ForCausalLM": False}


@cache
def architectures() -> dict[str, dict[str, Any]]:
    """data/architectures.yaml, each entry with `fused` from its model class in KAITO's model catalog."""
    classes = {m["name"].lower(): m["architectures"][0] for m in _load("kaito", "model_catalog.yaml")["models"]}
    return {name: {**arch, "fused": _FUSED_PROJECTIONS[classes[arch["catalog"]]]}
            for name, arch in _load("architectures.yaml")["architectures"].items()}


def linear_layers(arch: dict[str, Any]) -> list[tuple[int, int]]:
    """(input, output) features of every linear layer of one decoder layer: what peft's "all-linear" adapts."""
    h, i = arch["hidden"], arch["intermediate"]
    head = h // arch["heads"]
    q, kv = arch["heads"] * head, arch["kv_heads"] * head
    if arch["fused"]:
        return [(h, q + 2 * kv), (q, h), (h, 2 * i), (i, h)]
    return [(h, q), (h, kv), (h, kv), (q, h), (h, i), (h, i), (i, h)]


def _bytes_per_token(arch: dict[str, Any], checkpointing: bool, lora_dropout: bool, fused_loss: bool) -> float:
    """Activation bytes one token keeps alive at the peak of a LoRA step (bf16 compute).

    A decoder layer saves about 9 hidden-size, 2 key/value-size and 3 intermediate-size bf16 values per token
    for its backward (norm inputs and fp32 outputs, rotated q/k, v, attention output, MLP activation and
    product), and every adapted linear layer keeps its own bf16 copy of its input: separate q/k/v and gate/up
    projections (Mistral, Qwen2) keep three more hidden-size copies than Phi-3's fused ones. LoRA dropout adds
    about 4 bytes per adapted input value (its mask and the dropped copy cast for the adapter). Measured against
    the tensors autograd saves in Phi-3- and Mistral-shaped layers under bf16 autocast, this is 15-20% above
    (tests/trainer/test_plan.py). Checkpointing keeps only each layer's input plus one layer being recomputed.
    The loss upcasts the logits to fp32 and keeps their gradient (about 12 bytes per vocabulary entry) unless a
    fused linear+cross-entropy kernel (Liger) computes it in chunks.
    """
    h, i, layers = arch["hidden"], arch["intermediate"], arch["layers"]
    kv = arch["kv_heads"] * (h // arch["heads"])
    inputs = sum(n_in for n_in, _ in linear_layers(arch))
    layer = 2 * (9 * h + 2 * kv + 3 * i + inputs) + (4 * inputs if lora_dropout else 0)
    kept = layers * 2 * h + layer if checkpointing else layers * layer
    return kept + (0 if fused_loss else 12 * arch["vocab"])


def adapter_parameters(arch: dict[str, Any], rank: int) -> int:
    """LoRA on every linear layer of the decoder: A (rank x input) and B (output x rank) per layer."""
    return rank * arch["layers"] * sum(n_in + n_out for n_in, n_out in linear_layers(arch))


def plan_tuning(preset_name: str, method: str, quantization: str | None, rank: int, lora_dropout: float,
                max_seq_length: int, instance_type: str, fused_loss: bool) -> TuningPlan | None:
    """The largest token budget that fits one GPU of the size, without activation checkpointing when
    that still allows a budget of MIN_PACK_WITHOUT_CHECKPOINTING (checkpointing recomputes the forward
    pass: about 1.5 times the FLOPs of a LoRA step); None when the preset or size is unknown."""
    p, arch, gpu = preset(preset_name), architectures().get(preset_name), sku(instance_type)
    if p is None or p.params_b is None or arch is None or gpu is None or not gpu.gpus:
        return None
    embeddings = (1 if arch.get("tied") else 2) * arch["vocab"] * arch["hidden"]  # input embeddings and head
    params = p.params_b * 1e9
    if method == "lora":
        weights = params * _tuning_table()["bytes_per_param"]["lora"]
    else:  # quantized layers, plus embeddings and head, which stay unquantized and are upcast to fp32
        weights = (params - embeddings) * _tuning_table()["bytes_per_param"][f"qlora-{quantization or '4bit'}"] \
            + embeddings * 4
    adapter = adapter_parameters(arch, rank) * 16  # fp32 weights, gradients and two Adam moments
    usable = gpu.gpu_memory_gib * _GIB * 0.9 - 1.5 * _GIB  # allocator slack, CUDA context and kernels' workspace
    free = usable - weights - adapter

    def fits(checkpointing: bool) -> int:
        per_token = _bytes_per_token(arch, checkpointing, lora_dropout > 0, fused_loss)
        return max(0, int(free // per_token) // 256 * 256)

    checkpointing = fits(False) < max(max_seq_length, MIN_PACK_WITHOUT_CHECKPOINTING)
    budget = max(max_seq_length, min(PACK_CAP_TOKENS, fits(checkpointing)))
    peak = weights + adapter + budget * _bytes_per_token(arch, checkpointing, lora_dropout > 0, fused_loss)
    return TuningPlan(budget, checkpointing, round((peak + 1.5 * _GIB) / _GIB, 1), gpu.gpu_memory_gib)


def lora_fits(preset_name: str, instance_type: str) -> bool:
    """Whether bf16 LoRA (no quantization: faster steps, no dequantization error) fits one GPU of the size."""
    need, gpu = tuning_memory_gib(preset_name, "lora"), sku(instance_type)
    return need is not None and gpu is not None and need <= gpu.gpu_memory_gib


def method_hint(spec: dict[str, Any]) -> str | None:
    """For a TuningJob: a suggestion to use bf16 LoRA where QLoRA was chosen but is not needed (never applied)."""
    if spec.get("method") != "qlora" or "baseModel" not in spec:
        return None
    if lora_fits(spec["baseModel"], spec.get("placement", {}).get("instanceType", "")):
        return (f"method: lora also fits one GPU of {spec['placement']['instanceType']} "
                f"({tuning_memory_gib(spec['baseModel'], 'lora'):g} GiB): bf16 weights train faster than 4-bit "
                "ones, which are dequantized at every matrix multiplication")
    return None
