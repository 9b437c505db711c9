"""Batches without padding waste.

Padding-free: a batch's examples are concatenated into one row with position_ids restarting
at 0 for each example. transformers' attention (sdpa, eager and flash-attention) reads those
position ids as sequence boundaries, so no token attends across examples, and the first
label of each example is masked so no example is trained to predict from the one before.
"""

from __future__ import annotations

from typing import Any


def make_collator(tokenizer, padding_free: bool = True, pad_to_multiple_of: int | None = None):
    if padding_free:
        from transformers import DataCollatorWithFlattening

        return DataCollatorWithFlattening(return_position_ids=True, separator_id=-100)
    from transformers import DataCollatorForSeq2Seq

    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100,
                                  pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt")


def padding_efficiency(batch: dict[str, Any]) -> float:
    """Share of the batch's token slots that hold real tokens (1.0 for padding-free batches)."""
    mask = batch.get("attention_mask")
    if mask is None:
        return 1.0
    return float(mask.sum()) / mask.numel()


def token_budget_batches(lengths: list[int], max_tokens_per_batch: int) -> list[list[int]]:
    """Example indices grouped in order, each group at most max_tokens_per_batch tokens.

    Sort-free greedy fill: a packed row costs what its real tokens cost, so filling to a token
    budget (rather than a fixed count) keeps every step's work and memory about the same without
    reordering the (already shuffled) data. An example longer than the budget goes alone.
    """
    if max_tokens_per_batch < 1:
        raise ValueError(f"max_tokens_per_batch must be at least 1, got {max_tokens_per_batch}")
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index, length in enumerate(lengths):
        if current and used + length > max_tokens_per_batch:
            groups.append(current)
            current, used = [], 0
        current.append(index)
        used += length
    if current:
        groups.append(current)
    return groups
