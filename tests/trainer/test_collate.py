"""Padding-free collation: token-budget grouping and the flattened batch's layout."""

from __future__ import annotations

import pytest

from trainer.collate import make_collator, padding_efficiency, token_budget_batches


def test_token_budget_fills_in_order_and_never_exceeds_the_budget():
    lengths = [300, 500, 250, 900, 100, 100, 2000, 50]
    groups = token_budget_batches(lengths, 1024)
    assert [i for g in groups for i in g] == list(range(len(lengths)))  # order kept, nothing lost
    assert groups == [[0, 1], [2], [3, 4], [5], [6], [7]]
    for g in groups:
        assert len(g) == 1 or sum(lengths[i] for i in g) <= 1024


def test_token_budget_rejects_a_budget_below_one():
    with pytest.raises(ValueError, match="max_tokens_per_batch"):
        token_budget_batches([10], 0)


def test_flattened_batch_has_no_padding_and_positions_restart_per_example():
    examples = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
                {"input_ids": [8, 9], "labels": [-100, 9]}]
    batch = make_collator(None, padding_free=True)(examples)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert batch["labels"][0, 3].item() == -100  # no example learns from the one before
    assert padding_efficiency(batch) == 1.0


def test_token_budget_caps_the_examples_per_batch():
    assert token_budget_batches([10] * 7, 1000, max_examples=3) == [[0, 1, 2], [3, 4, 5], [6]]


def test_sampler_keeps_its_packs_and_draws_their_order_from_seed_and_epoch():
    from trainer.collate import TokenBudgetSampler

    lengths = [30, 70, 20, 90, 40, 60, 10, 50, 80, 25] * 4
    sampler = TokenBudgetSampler(lengths, 200, seed=3)
    first = list(sampler)
    assert sorted(i for pack in first for i in pack) == list(range(len(lengths)))  # every example once
    assert all(sum(lengths[i] for i in pack) <= 200 for pack in first)
    assert len(first) == len(sampler) == len(token_budget_batches(lengths, 200))
    assert list(sampler) == first  # same epoch, same order: a resumed run replays it
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and sorted(map(tuple, second)) == sorted(map(tuple, first))


def test_flash_attention_batches_carry_the_sequence_boundaries():
    examples = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
                {"input_ids": [8, 9], "labels": [-100, 9]}]
    batch = make_collator(None, padding_free=True, flash_attention=True)(examples)
    assert batch["cu_seq_lens_q"].tolist() == batch["cu_seq_lens_k"].tolist() == [0, 3, 5]
    assert batch["max_length_q"] == batch["max_length_k"] == 3 and isinstance(batch["max_length_q"], int)
    assert "cu_seq_lens_q" not in make_collator(None, padding_free=True)(examples)
