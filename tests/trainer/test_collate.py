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
