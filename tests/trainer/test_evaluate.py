"""Evaluation metrics: per assistant token, independent of batching and packing."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, DataCollatorWithFlattening

from trainer.evaluate import evaluate, plot_losses


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)


def examples(n: int) -> list[dict]:
    out = []
    for i in range(n):
        ids = [(7 * i + j) % 290 + 5 for j in range(8 + 3 * i)]
        labels = [-100] * 4 + ids[4:]  # the "prompt" is not scored
        out.append({"input_ids": ids, "labels": labels})
    return out


def test_packed_batches_give_the_same_metrics_as_single_examples(model):
    data = examples(5)
    packed = evaluate(model, data, DataCollatorWithFlattening(), batch_size=5)
    single = evaluate(model, data, DataCollatorWithFlattening(), batch_size=1)
    assert packed["tokens"] == single["tokens"] == sum(len(e["input_ids"]) - 4 for e in data)
    assert packed["loss"] == pytest.approx(single["loss"], rel=1e-5)
    assert packed["token_accuracy"] == single["token_accuracy"]
    assert packed["perplexity"] == pytest.approx(math.exp(packed["loss"]))


@pytest.mark.parametrize("training", [True, False])
def test_train_or_eval_mode_is_restored(model, training):
    model.train(training)
    evaluate(model, examples(1), DataCollatorWithFlattening(), batch_size=1)
    assert model.training is training


def test_no_scored_tokens_gives_no_numbers(model):
    data = [{"input_ids": [5, 6, 7], "labels": [-100, -100, -100]}]
    assert evaluate(model, data, DataCollatorWithFlattening(), batch_size=1)["tokens"] == 0


def test_loss_curve_png(tmp_path):
    log = tmp_path / "train_log.jsonl"
    log.write_text("".join(json.dumps({"step": s, "loss": 3.0 / s}) + "\n" for s in range(1, 6))
                   + json.dumps({"step": 5, "eval_loss": 1.0}) + "\n")
    assert plot_losses(log, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    log.write_text(json.dumps({"step": 1, "train_runtime": 1.0}) + "\n")
    assert not plot_losses(log, tmp_path / "d.png")


def test_evaluation_runs_under_the_training_dtype_autocast(model):
    seen = []
    handle = model.model.layers[0].mlp.down_proj.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    try:
        plain = evaluate(model, examples(3), DataCollatorWithFlattening(), batch_size=3)
        mixed = evaluate(model, examples(3), DataCollatorWithFlattening(), batch_size=3,
                         autocast_dtype=torch.bfloat16)
    finally:
        handle.remove()
    assert seen == [torch.float32, torch.bfloat16]
    assert mixed["tokens"] == plain["tokens"] and mixed["loss"] == pytest.approx(plain["loss"], rel=0.05)
    assert mixed["loss"] != plain["loss"]
