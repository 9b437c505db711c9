"""Data layouts, file formats, unusable-row accounting, assistant-only labels, and padding-free
batches that give the same loss as examples run one by one."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from trainer.collate import make_collator
from trainer.config import DatasetConfig
from trainer.data import DataError, prepare_datasets, tokenize_conversation, tokenize_file


def _conftest():
    """The shared fixtures' row maker (conftest is not importable by name under --import-mode=importlib)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("trainer_conftest", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_chat_rows = _conftest().make_chat_rows


def _cfg(path: Path, **kw) -> DatasetConfig:
    return replace(DatasetConfig(), **{"dataset_path": str(path), "train_test_split": 1.0, **kw})


def _write(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows))
    else:
        import csv

        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path


def _qa_rows(n: int) -> list[dict]:
    return [{"prompt": f"what is {i} plus one?", "completion": f"it is {i + 1}."} for i in range(n)]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".json", ".csv"])
def test_every_file_format_reads(tmp_path, tiny_tokenizer, suffix):
    path = _write(tmp_path / f"train{suffix}", _qa_rows(60))
    examples, report = tokenize_file(path, tiny_tokenizer, 256)
    assert report.layout == "prompt-completion" and report.usable == 60 == len(examples)


@pytest.mark.parametrize("rows,layout", [
    (make_chat_rows(5), "messages:messages"),
    ([{"instruction": "name a colour", "context": "", "response": "red"}] * 5, "instruction-context-response"),
    ([{"question": "why?", "answer": "because."}] * 5, "columns:question:answer"),
])
def test_layouts(tmp_path, tiny_tokenizer, rows, layout):
    cfg = _cfg(tmp_path / "x.jsonl", context_column="question", response_column="answer")
    _, report = tokenize_file(_write(tmp_path / "x.jsonl", rows), tiny_tokenizer, 256, cfg)
    assert report.layout == layout and report.usable == 5


def test_labels_cover_exactly_the_assistant_replies(tiny_tokenizer):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "capital of france?"},
                {"role": "assistant", "content": "paris."}, {"role": "user", "content": "and why?"},
                {"role": "assistant", "content": "the river."}]
    example, truncated = tokenize_conversation(tiny_tokenizer, messages, 512)
    labelled = [t for t in example["labels"] if t != -100]
    assert not truncated
    assert tiny_tokenizer.decode(labelled) == "paris.<|end|>\nthe river.<|end|>\n<|endoftext|>"


def test_unusable_rows_are_counted_per_reason(tmp_path, tiny_tokenizer):
    rows = make_chat_rows(55) + [
        {"messages": [{"role": "user", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]},
        {"messages": [{"role": "wizard", "content": "hi"}, {"role": "assistant", "content": "ok"}]},
        {"messages": []},
    ]
    _, report = tokenize_file(_write(tmp_path / "t.jsonl", rows), tiny_tokenizer, 512)
    assert report.rows == 59 and report.usable == 55
    assert report.unusable == {"a message has an unknown role": 1, "empty assistant reply": 1,
                               "messages is empty or not a list": 1, "no assistant reply": 1}


def test_fewer_than_50_usable_examples_is_an_error_with_the_counts(tmp_path, tiny_tokenizer):
    path = _write(tmp_path / "t.jsonl", _qa_rows(49) + [{"prompt": "x", "completion": ""}])
    with pytest.raises(DataError, match=r"49 usable training examples, at least 50 are needed \(50 rows; 1 empty"):
        prepare_datasets(_cfg(path), tiny_tokenizer, 256, seed=0)


def test_non_utf8_file_is_an_error_naming_file_and_line(tmp_path, tiny_tokenizer):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"prompt": "a", "completion": "b"}\n{"prompt": "caf\xe9", "completion": "b"}\n')
    with pytest.raises(DataError, match=r"t.jsonl:2: not UTF-8"):
        tokenize_file(path, tiny_tokenizer, 256)


def test_unknown_layout_names_the_columns(tmp_path, tiny_tokenizer):
    with pytest.raises(DataError, match=r"unknown layout: columns \['a', 'b'\]"):
        tokenize_file(_write(tmp_path / "t.csv", [{"a": "1", "b": "2"}]), tiny_tokenizer, 256)


def test_truncation_is_counted(tmp_path, tiny_tokenizer):
    rows = _qa_rows(60)
    full = len(tokenize_conversation(tiny_tokenizer, [{"role": "user", "content": rows[0]["prompt"]},
                                                      {"role": "assistant", "content": rows[0]["completion"]}], 10**6)[0]["input_ids"])
    examples, report = tokenize_file(_write(tmp_path / "t.jsonl", rows), tiny_tokenizer, full - 1)
    assert report.truncated >= 1 and all(len(e["input_ids"]) <= full - 1 for e in examples)


def test_held_out_split_is_seeded(tmp_path, tiny_tokenizer):
    path = _write(tmp_path / "t.jsonl", _qa_rows(100))
    a = prepare_datasets(_cfg(path, train_test_split=0.8), tiny_tokenizer, 256, seed=1)
    b = prepare_datasets(_cfg(path, train_test_split=0.8), tiny_tokenizer, 256, seed=1)
    assert len(a[0]) == 80 and len(a[1]) == 20 and a[1] == b[1]


def test_validation_file_is_the_evaluation_set_and_reported(tmp_path, tiny_tokenizer):
    train = _write(tmp_path / "t.jsonl", _qa_rows(60))
    validation = _write(tmp_path / "v.csv", _qa_rows(7) + [{"prompt": "x", "completion": ""}])
    examples, evaluation, summary = prepare_datasets(_cfg(train, train_test_split=0.5), tiny_tokenizer, 256, seed=0,
                                                     validation_path=validation)
    assert (len(examples), len(evaluation)) == (60, 7)  # the split is not applied when a file is given
    assert summary["validation_file"]["unusable"] == {"empty assistant reply": 1}


def test_packed_batch_gives_the_same_loss_as_examples_one_by_one(tiny_model_dir, tiny_tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa").eval()
    examples = [tokenize_conversation(tiny_tokenizer, r["messages"], 256)[0] for r in make_chat_rows(6, seed=3)]
    packed = make_collator(tiny_tokenizer, padding_free=True)(examples)
    assert packed["input_ids"].shape[0] == 1 and "attention_mask" not in packed

    def summed_loss(batch) -> tuple[float, int]:
        with torch.no_grad():
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}, use_cache=False).logits
        targets = batch["labels"][:, 1:]
        mask = targets != -100
        loss = torch.nn.functional.cross_entropy(logits[:, :-1][mask], targets[mask], reduction="sum")
        return loss.item(), int(mask.sum())

    one_by_one = [summed_loss(make_collator(tiny_tokenizer, padding_free=False)([e])) for e in examples]
    packed_sum, packed_tokens = summed_loss(packed)
    assert packed_tokens == sum(n for _, n in one_by_one)
    assert packed_sum == pytest.approx(sum(s for s, _ in one_by_one), rel=1e-4)


@pytest.mark.parametrize("error, expected", [
    (PermissionError(13, "Permission denied"), "cannot read the data file (Permission denied); check that"),
    (IsADirectoryError(21, "Is a directory"), "cannot read the data file (Is a directory)"),
])
def test_a_file_the_user_must_fix_is_a_data_error(tmp_path, tiny_tokenizer, monkeypatch, error, expected):
    path = _write(tmp_path / "t.jsonl", _qa_rows(60))
    monkeypatch.setattr(Path, "read_bytes", lambda self: (_ for _ in ()).throw(error))
    with pytest.raises(DataError, match=r"t\.jsonl: " + expected.replace("(", r"\(").replace(")", r"\)")):
        tokenize_file(path, tiny_tokenizer, 256)


def test_an_io_error_a_retry_may_cure_is_not_a_data_error(tmp_path, tiny_tokenizer, monkeypatch):
    path = _write(tmp_path / "t.jsonl", _qa_rows(60))
    monkeypatch.setattr(Path, "read_bytes", lambda self: (_ for _ in ()).throw(OSError(5, "Input/output error")))
    with pytest.raises(OSError, match="Input/output error") as raised:
        tokenize_file(path, tiny_tokenizer, 256)
    assert not isinstance(raised.value, DataError)


def _parquet_read_fails(monkeypatch, error: OSError) -> None:
    """pyarrow fails while `datasets` generates the table, as a failing volume would (after the schema was read)."""
    import importlib

    builder = importlib.import_module("datasets.packaged_modules.parquet.parquet").Parquet

    def failing_read(self, files, row_groups_list):
        raise error
        yield  # a generator, as datasets expects

    monkeypatch.setattr(builder, "_generate_tables", failing_read)


def test_an_io_error_reading_parquet_is_retried_not_a_data_error(tmp_path, tiny_tokenizer, monkeypatch):
    path = _write(tmp_path / "t.parquet", _qa_rows(60))
    _parquet_read_fails(monkeypatch, OSError(5, "Error reading bytes from file. Detail: [errno 5] Input/output error"))
    with pytest.raises(Exception) as raised:
        tokenize_file(path, tiny_tokenizer, 256)
    assert not isinstance(raised.value, DataError), raised.value  # the trainer exits 1: the Job retries


def test_parquet_the_pod_may_not_read_is_a_data_error(tmp_path, tiny_tokenizer, monkeypatch):
    path = _write(tmp_path / "t.parquet", _qa_rows(60))
    _parquet_read_fails(monkeypatch, PermissionError(13, "Permission denied"))
    with pytest.raises(DataError, match=r"t\.parquet: cannot read the data file \(Permission denied\)"):
        tokenize_file(path, tiny_tokenizer, 256)


def test_column_names_from_the_file_are_escaped_in_the_error(tmp_path, tiny_tokenizer):
    path = _write(tmp_path / "t.jsonl", [{"\x1b[2J\u202eevil": "1", "b\nc": "2"}])
    with pytest.raises(DataError) as raised:
        tokenize_file(path, tiny_tokenizer, 256)
    message = str(raised.value)
    assert "\\x1b[2J\\u202eevil" in message and "b\\nc" in message
    assert not any(ch in message for ch in "\x1b\u202e\n"), message
