"""Estimated GPU hours and cost of workloads, for the pull-request plan.

Every figure is an estimate from `data/prices.yaml` (list prices with their
source and date, and a documented throughput model). A price or size the data
does not know stays `None` so the comment says "unknown" instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from infra import catalog
from infra.model import TUNING_KIND, Environment, Workload

# HF TrainingArguments' (and so KAITO's) num_train_epochs when the config does not set it.
DEFAULT_EPOCHS = 3


@cache
def data() -> dict[str, Any]:
    return yaml.safe_load((catalog.DATA / "prices.yaml").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Price:
    """USD per VM-hour in `region`; `requested` differs when we fell back to the reference region."""

    instance_type: str
    region: str
    requested: str
    regular: float | None
    spot: float | None

    @property
    def fallback(self) -> bool:
        return self.region != self.requested


def vm_price(instance_type: str, region: str | None) -> Price | None:
    """The price row for the size in `region`, else in the reference region, else None."""
    rows = data()["vm_sizes"].get(instance_type) or {}
    requested = region or data()["reference_region"]
    for candidate in (requested, data()["reference_region"]):
        if candidate in rows:
            row = rows[candidate]
            return Price(instance_type, candidate, requested, row.get("regular"), row.get("spot"))
    return None


@dataclass(frozen=True)
class TuningEstimate:
    name: str
    instance_type: str
    gpus: int
    epochs: float
    examples: int | None
    tokens: float | None  # None: unknown size
    hours: float | None  # wall-clock hours of the VM
    price: Price | None

    @property
    def gpu_hours(self) -> float | None:
        return None if self.hours is None else self.hours * self.gpus

    def cost(self, kind: str) -> float | None:
        """Estimated job cost, `kind` "regular" or "spot"; None when size or price is unknown."""
        per_hour = getattr(self.price, kind) if self.price else None
        return None if per_hour is None or self.hours is None else per_hour * self.hours


@dataclass(frozen=True)
class InferenceEstimate:
    name: str
    instance_type: str
    count: int
    gpus: int
    price: Price | None

    def per_hour(self, kind: str) -> float | None:
        per_vm = getattr(self.price, kind) if self.price else None
        return None if per_vm is None else per_vm * self.count


def tokens_per_second(preset_name: str, method: str, instance_type: str) -> float | None:
    """Training tokens/s of one VM of this size under the model in prices.yaml; None if a figure is missing."""
    model = data()["tuning_throughput"]
    preset = catalog.preset(preset_name)
    sku = catalog.sku(instance_type)
    if preset is None or preset.params_b is None or sku is None or sku.gpu not in model["peak_tflops"]:
        return None
    per_gpu = (model["peak_tflops"][sku.gpu] * 1e12 * model["utilization"][method]
               / (model["flops_per_token_per_param"] * preset.params_b * 1e9))
    return per_gpu * sku.gpus


def estimate_tuning(w: Workload, region: str | None) -> TuningEstimate:
    from infra.render import training_config

    spec = w.spec
    instance = spec["placement"]["instanceType"]
    sku = catalog.sku(instance)
    args = training_config(w)["training_config"]["TrainingArguments"]
    epochs = float(args.get("num_train_epochs", DEFAULT_EPOCHS))
    examples = spec["data"]["train"].get("examples")
    tokens = hours = None
    rate = tokens_per_second(spec["baseModel"], spec["method"], instance)
    if examples is not None:
        tokens = examples * data()["tuning_throughput"]["tokens_per_example"] * epochs
        if rate:
            hours = tokens / rate / 3600 + data()["tuning_throughput"]["startup_hours"]
    return TuningEstimate(w.name, instance, sku.gpus if sku else 0, epochs, examples, tokens, hours,
                          vm_price(instance, region))


def estimate_inference(w: Workload, region: str | None) -> InferenceEstimate:
    instance = w.spec["placement"]["instanceType"]
    sku = catalog.sku(instance)
    count = int(w.spec.get("replicas", 1))
    return InferenceEstimate(w.name, instance, count, (sku.gpus if sku else 0) * count, vm_price(instance, region))


def source_note() -> str:
    """One line naming where the prices come from and when, for the comment's footer."""
    d = data()
    return (f"Estimates only: {d['currency']} {d['unit']}, list prices from {d['source']}, "
            f"read {d['retrieved']} (price date: {d['price_date']}); throughput model and assumptions in "
            "`infra/data/prices.yaml`.")


@dataclass(frozen=True)
class GpuNodes:
    """GPU nodes one thing keeps: one of the stack's pools, or the nodes KAITO provisions for one Workspace."""

    owner: str  # "pool gpua100" or "Workspace team/name"
    instance_type: str
    nodes: str  # "0-2" for a pool, "1" for a Workspace
    billing: str  # when the nodes bill, in words
    standing: int  # nodes that bill for as long as the stack or the spec exists
    spot: bool
    price: Price | None

    def standing_per_hour(self) -> float | None:
        per_vm = getattr(self.price, "spot" if self.spot else "regular") if self.price else None
        if not self.standing:
            return 0.0
        return None if per_vm is None else per_vm * self.standing


def gpu_nodes(env: Environment, pools: list, region: str | None) -> list[GpuNodes]:
    """Which GPU nodes exist for an environment and which stay up (`pools`: name, vm_size, min_nodes,
    max_nodes, spot). With nodeProvisioning auto, KAITO creates a node per Workspace node from its
    instanceType and deletes it only with the Workspace (its NodeClaims carry karpenter.sh/do-not-disrupt);
    our pools host bundled Jobs, which leave the pool free to scale to zero. With byo, Workspaces hold
    pool nodes."""
    byo = env.defaults["kaito"]["nodeProvisioning"] == "byo"
    held_on_pool: dict[str, int] = {}
    workspaces: list[GpuNodes] = []
    for w in env.workloads:
        if w.retired or (w.kind == TUNING_KIND and w.spec["engine"] == "bundled"):
            continue
        count = int(w.spec.get("replicas", 1))  # an InferenceSet runs one Workspace per replica
        if byo:
            held_on_pool[env.defaults["nodePool"]] = held_on_pool.get(env.defaults["nodePool"], 0) + count
            continue
        instance = w.spec["placement"]["instanceType"]
        billing = ("from deploy until the spec is retired (KAITO keeps the node after the job ends; the retire "
                   "workflow proposes that within 15 minutes)"
                   if w.kind == TUNING_KIND else "while deployed")
        kind = "InferenceSet" if count > 1 else "Workspace"  # KAITO makes an InferenceSet's Workspaces
        workspaces.append(GpuNodes(f"{kind} {w.namespace}/{w.name}", instance, str(count), billing, count, False,
                            vm_price(instance, region)))
    out: list[GpuNodes] = []
    for pool in pools:
        held = held_on_pool.get(pool.name, 0)
        standing = max(pool.min_nodes, min(held, pool.max_nodes))
        if held:
            billing = f"{held} node(s) held by KAITO Workspaces while deployed"
        elif pool.min_nodes:
            billing = f"{pool.min_nodes} node(s) always"
        else:
            billing = "only while a bundled Job runs (idle nodes are removed after the autoscaler's 10 min)"
        out.append(GpuNodes(f"pool {pool.name}", pool.vm_size, f"{pool.min_nodes}-{pool.max_nodes}", billing,
                            standing, pool.spot, vm_price(pool.vm_size, region)))
    return out + workspaces
