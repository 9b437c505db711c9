"""Checkpoint bookkeeping without a Trainer: completion markers, rotation, SIGTERM, log truncation."""

from __future__ import annotations

import json
import os
import signal
from types import SimpleNamespace

from transformers import TrainerControl

from trainer.checkpoint import (COMPLETE_MARKER, CompleteCheckpoints, JsonLinesLog, StopOnSigterm,
                                latest_complete_checkpoint)


def make_checkpoint(root, step, complete=True):
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "adapter_model.safetensors").write_bytes(b"x")
    if complete:
        (path / COMPLETE_MARKER).write_text(json.dumps({"global_step": step}))
    return path


def test_newest_complete_checkpoint_wins_over_a_newer_half_written_one(tmp_path, caplog):
    make_checkpoint(tmp_path, 2)
    ten = make_checkpoint(tmp_path, 10)
    make_checkpoint(tmp_path, 12, complete=False)
    (tmp_path / "checkpoint-latest").mkdir()
    assert latest_complete_checkpoint(tmp_path) == ten
    assert "ignoring incomplete checkpoint" in caplog.text and "checkpoint-12" in caplog.text


def test_no_checkpoint_means_a_fresh_start(tmp_path):
    assert latest_complete_checkpoint(tmp_path / "absent") is None
    make_checkpoint(tmp_path, 3, complete=False)
    assert latest_complete_checkpoint(tmp_path) is None


def test_on_save_marks_complete_then_rotates(tmp_path):
    make_checkpoint(tmp_path, 2)
    make_checkpoint(tmp_path, 4)
    make_checkpoint(tmp_path, 6, complete=False)  # left by a pod killed while saving
    make_checkpoint(tmp_path, 8, complete=False)  # what the Trainer has just written
    args = SimpleNamespace(output_dir=str(tmp_path), should_save=True)
    CompleteCheckpoints(keep=2).on_save(args, SimpleNamespace(global_step=8), TrainerControl())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4", "checkpoint-8"]
    assert latest_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-8"


def test_sigterm_asks_the_trainer_to_save_and_stop():
    stop = StopOnSigterm()
    previous = signal.getsignal(signal.SIGTERM)
    stop.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
    finally:
        stop.uninstall()
    assert stop.received and signal.getsignal(signal.SIGTERM) is previous
    control = stop.on_step_end(None, None, TrainerControl())
    assert control.should_save and control.should_training_stop


def test_resumed_log_drops_records_after_the_checkpoint(tmp_path):
    path = tmp_path / "train_log.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 8)))
    JsonLinesLog(path, resumed_step=4)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3, 4]
    JsonLinesLog(path, resumed_step=0)
    assert path.read_text() == ""
