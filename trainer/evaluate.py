"""Held-out metrics on assistant tokens only: loss, perplexity and next-token accuracy."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn


@torch.no_grad()
def evaluate(model: nn.Module, examples: Sequence[dict], collator: Callable[[list[dict]], dict],
             batch_size: int, autocast_dtype: torch.dtype | None = None) -> dict:
    """Token-weighted metrics over positions whose label is not -100 (the assistant's tokens).

    Summing per token, rather than averaging per batch as Trainer.evaluate does, makes the
    numbers independent of batch size and packing. `autocast_dtype` is the training's mixed
    precision (bf16 or fp16): the model is evaluated as it was trained, not in its storage dtype.
    """
    was_training = model.training
    model.eval()
    device = next(p for p in model.parameters()).device
    loss_sum, correct, tokens = 0.0, 0, 0
    for start in range(0, len(examples), batch_size):
        batch = collator(list(examples[start:start + batch_size]))
        labels = batch.pop("labels").to(device)
        inputs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            logits = model(**inputs, use_cache=False).logits.float()  # a cache disables packed-sequence masks
        logits, targets = logits[:, :-1, :], labels[:, 1:]
        mask = targets != -100
        if not mask.any():
            continue
        picked, gold = logits[mask], targets[mask]
        loss_sum += nn.functional.cross_entropy(picked, gold, reduction="sum").item()
        correct += (picked.argmax(dim=-1) == gold).sum().item()
        tokens += int(mask.sum())
    model.train(was_training)
    if tokens == 0:
        return {"loss": None, "perplexity": None, "token_accuracy": None, "tokens": 0}
    loss = loss_sum / tokens
    return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "token_accuracy": correct / tokens,
            "tokens": tokens}


def plot_losses(log_path, png_path) -> bool:
    """Draw train (and eval) loss against step from train_log.jsonl; False when nothing was logged."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in open(log_path) if line.strip()]
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    evals = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
    if not train and not evals:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    for points, label in ((train, "train loss"), (evals, "eval loss")):
        if points:
            ax.plot(*zip(*points), marker="." if len(points) < 50 else None, label=label)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (assistant tokens)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return True
