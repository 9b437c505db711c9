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
