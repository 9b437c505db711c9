"""The price data is complete and honest about itself, and the estimates follow the documented model."""

from __future__ import annotations

import dataclasses

import pytest

from infra import catalog, pricing
from infra.specs import load_environment


def test_every_gpu_size_has_an_entry_and_every_entry_is_a_known_size():
    sizes = pricing.data()["vm_sizes"]
    assert set(catalog.gpu_skus()) == set(sizes)


def test_the_file_says_it_is_an_estimate_with_source_and_date():
    d = pricing.data()
    assert d["retrieved"] and d["source"] and "price_date" in d
    text = (catalog.DATA / "prices.yaml").read_text()
    assert "ESTIMATES" in text and "not verified" in text.lower()
    assert "Estimates only" in pricing.source_note() and d["retrieved"] in pricing.source_note()


def test_prices_are_plausible_numbers_or_explicitly_unknown():
    for size, regions in pricing.data()["vm_sizes"].items():
        for region, row in regions.items():
            assert set(row) == {"regular", "spot"}, (size, region)
            assert row["regular"] is None or 0 < row["regular"] < 200, (size, region)
            # Spot is a discount: a Spot price at or above pay-as-you-go is a data error, keep it unknown.
            assert row["spot"] is None or 0 < row["spot"] < row["regular"], (size, region)


def test_every_gpu_model_has_a_peak_and_every_method_a_utilization():
    model = pricing.data()["tuning_throughput"]
    assert {catalog.sku(s).gpu for s in catalog.gpu_skus()} - {"H200", "V620"} <= set(model["peak_tflops"])
    assert set(model["utilization"]) == {"lora", "qlora"}


def test_price_falls_back_to_the_reference_region_and_says_so():
    here = pricing.vm_price("Standard_NC24ads_A100_v4", "westus3")
    assert (here.region, here.fallback, here.regular) == ("westus3", False, 3.673)
    away = pricing.vm_price("Standard_NC24ads_A100_v4", "westeurope")
    assert (away.region, away.requested, away.fallback) == ("eastus", "westeurope", True)
    assert pricing.vm_price("Standard_ND96isr_H200_v5", "eastus") is None  # not in the price source


def _dev_workload(name: str):
    return load_environment("dev").by_name(name)


def test_tuning_estimate_follows_the_documented_model():
    w = _dev_workload("phi3-dolly-qlora")  # 15011 examples, 1 epoch, qlora, phi-3-mini (3.8B) on one A100
    est = pricing.estimate_tuning(w, "eastus")
    model = pricing.data()["tuning_throughput"]
    tokens = 15011 * model["tokens_per_example"] * 1
    rate = 312e12 * model["utilization"]["qlora"] / (model["flops_per_token_per_param"] * 3.8e9)
    hours = tokens / rate / 3600 + model["startup_hours"]
    assert est.tokens == pytest.approx(tokens)
    assert est.hours == pytest.approx(hours)
    assert est.gpu_hours == pytest.approx(hours * 1)
    assert est.cost("regular") == pytest.approx(hours * 3.673)
    assert est.cost("spot") == pytest.approx(hours * 0.4444)


def test_more_epochs_and_a_bigger_model_take_longer():
    w = _dev_workload("phi3-dolly-qlora")
    base = pricing.estimate_tuning(w, "eastus").hours
    three = dataclasses.replace(w, spec={**w.spec, "hyperparameters": {"epochs": 3}})
    assert pricing.estimate_tuning(three, "eastus").hours > base
    bigger = dataclasses.replace(w, spec={**w.spec, "baseModel": "phi-4"})
    assert pricing.estimate_tuning(bigger, "eastus").hours > base


def test_without_the_examples_hint_the_size_is_unknown_but_the_hourly_price_is_not():
    w = _dev_workload("phi3-dolly-qlora")
    train = {k: v for k, v in w.spec["data"]["train"].items() if k != "examples"}
    unknown = dataclasses.replace(w, spec={**w.spec, "data": {"train": train}})
    est = pricing.estimate_tuning(unknown, "eastus")
    assert est.tokens is None and est.hours is None and est.gpu_hours is None and est.cost("regular") is None
    assert est.price.regular == 3.673


def test_inference_cost_per_hour_scales_with_replicas():
    w = load_environment("prod").by_name("phi3-support")  # count: 2
    est = pricing.estimate_inference(w, "eastus")
    assert (est.count, est.gpus) == (2, 2)
    assert est.per_hour("regular") == pytest.approx(2 * 3.673)
