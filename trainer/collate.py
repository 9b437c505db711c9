"""Batches without padding waste.

Padding-free: a batch's examples are concatenated into one row with position_ids restarting
at 0 for each example. transformers' attention (sdpa, eager and flash-attention) reads those
position ids as sequence boundaries, so no token attends across examples, and the first
label of each example is masked so no example is trained to predict from the one before.
"""

from __future__ import annotations

import random
from typing import Any, Iterator

from torch.utils.data import Sampler


def make_collator(tokenizer, padding_free: bool = True, pad_to_multiple_of: int | None = None,
                  flash_attention: bool = False):
    """flash_attention: also hand over the sequence boundaries (cu_seq_lens_q/k and max_length_q/k, the
    latter plain ints) so flash-attention's variable-length kernel runs without deriving them from
    position_ids on the GPU and reading the longest length back to the host."""
    if padding_free:
        from transformers import DataCollatorWithFlattening

        return DataCollatorWithFlattening(return_position_ids=True, separator_id=-100,
                                          return_flash_attn_kwargs=flash_attention)
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


def token_budget_batches(lengths: list[int], max_tokens_per_batch: int,
                         max_examples: int | None = None) -> list[list[int]]:
    """Example indices grouped in order, each group at most max_tokens_per_batch tokens.

    Sort-free greedy fill: a packed row costs what its real tokens cost, so filling to a token
    budget (rather than a fixed count) keeps every step's work and memory about the same without
    reordering the (already shuffled) data. An example longer than the budget goes alone; a group
    holds at most max_examples examples when that is set.
    """
    if max_tokens_per_batch < 1:
        raise ValueError(f"max_tokens_per_batch must be at least 1, got {max_tokens_per_batch}")
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index, length in enumerate(lengths):
        if current and (used + length > max_tokens_per_batch or len(current) == max_examples):
            groups.append(current)
            current, used = [], 0
        current.append(index)
        used += length
    if current:
        groups.append(current)
    return groups


class TokenBudgetSampler(Sampler[list[int]]):
    """Batches of example indices packed to a token budget, for a DataLoader's batch_sampler.

    The packs are made once, in the data's (already shuffled) order, so every epoch has the same
    number of steps and the learning-rate schedule knows it; each epoch visits the packs in an
    order drawn from (seed, epoch), so a resumed run replays the same order. With several
    processes, accelerate deals the packs out round-robin (BatchSamplerShard, which accepts
    batches of varying size when the sampler has no batch_size).
    """

    def __init__(self, lengths: list[int], max_tokens_per_batch: int, max_examples: int | None = None,
                 seed: int = 0):
        self.packs = token_budget_batches(lengths, max_tokens_per_batch, max_examples)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.packs)

    def __iter__(self) -> Iterator[list[int]]:
        order = list(range(len(self.packs)))
        random.Random(self.seed * 100_003 + self.epoch).shuffle(order)
        for i in order:
            yield list(self.packs[i])
