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
