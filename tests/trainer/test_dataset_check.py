"""`kaito-gitops dataset check`: the report's contents and exit codes."""

from __future__ import annotations

import json

from infra.cli import main


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rows(n):
    return [{"prompt": f"question {i}?", "completion": f"answer {i}."} for i in range(n)]


def test_report_counts_rows_duplicates_and_personal_data(tmp_path, capsys):
    rows = _rows(60) + [_rows(1)[0], {"prompt": "mail me", "completion": "write to ann@example.com or +44 20 7946 0958"},
                        {"prompt": "key?", "completion": "hf_" + "a" * 34}, {"prompt": "x", "completion": ""}]
    assert main(["dataset", "check", str(_jsonl(tmp_path / "d.jsonl", rows)), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["rows"], report["usable"], report["duplicates"]) == (64, 63, 1)
    assert report["unusable"] == {"empty assistant reply": 1}
    assert report["findings"] == {"e-mail address": [62], "phone number": [62], "key or token": [63]}
    assert set(report["token_lengths"]) == {"mean", "p50", "p90", "p99", "max"}


def test_exact_token_counts_with_the_tokenizer(tmp_path, tiny_model_dir, capsys):
    path = _jsonl(tmp_path / "d.jsonl", _rows(60))
    assert main(["dataset", "check", str(path), "--tokenizer", str(tiny_model_dir), "--max-seq-length", "8"]) == 0
    out = capsys.readouterr().out
    assert "model's tokenizer" in out and "truncated:   60 longer than max_seq_length 8" in out


def test_too_few_examples_exits_1(tmp_path, capsys):
    assert main(["dataset", "check", str(_jsonl(tmp_path / "d.jsonl", _rows(10)))]) == 1
    assert "10 usable examples, at least 50 are needed" in capsys.readouterr().out


def test_not_utf8_exits_1_naming_the_line(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_bytes(b"prompt,completion\nok,fine\ncaf\xe9,bad\n")
    assert main(["dataset", "check", str(path)]) == 1
    assert "d.csv:3: not UTF-8" in capsys.readouterr().out


def test_unknown_layout_exits_1(tmp_path, capsys):
    assert main(["dataset", "check", str(_jsonl(tmp_path / "d.jsonl", [{"a": 1}] * 60))]) == 1
    assert "unknown layout" in capsys.readouterr().out


def test_missing_file_is_a_usage_error(tmp_path):
    assert main(["dataset", "check", str(tmp_path / "nope.parquet")]) == 2


def test_max_seq_length_below_one_is_a_usage_error(tmp_path, capsys):
    path = _jsonl(tmp_path / "d.jsonl", _rows(60))
    assert main(["dataset", "check", str(path), "--max-seq-length", "0"]) == 2
    assert "--max-seq-length must be at least 1" in capsys.readouterr().err
