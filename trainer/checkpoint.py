"""Checkpoints a preempted pod can trust: marked complete only once fully written, and a
SIGTERM turned into one last checkpoint before the pod's grace period runs out."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import signal
from pathlib import Path

from transformers import TrainerCallback

from trainer.distributed import agree, is_main_process

log = logging.getLogger(__name__)

COMPLETE_MARKER = "checkpoint_complete.json"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def _checkpoints(root: Path) -> list[tuple[int, Path]]:
    """checkpoint-N directories under root, oldest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _CHECKPOINT_RE.fullmatch(p.name))]
    return sorted(found)


def is_complete(checkpoint: Path) -> bool:
    return (checkpoint / COMPLETE_MARKER).is_file()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def fingerprint(config: dict, examples: list[dict], world_size: int) -> str:
    """What a checkpoint's training depends on: the settings, the tokenized data in its order, the ranks.

    A checkpoint resumes only a run with the same fingerprint; otherwise its weights, optimizer
    state and step count belong to another run (another dataset, rank, learning rate...).
    """
    digest = hashlib.sha256(json.dumps({"config": config, "world_size": world_size}, sort_keys=True,
                                       default=str).encode())
    for example in examples:
        digest.update(json.dumps([example["input_ids"], example["labels"]]).encode())
    return digest.hexdigest()[:16]


def checkpoint_fingerprint(checkpoint: Path) -> str | None:
    try:
        return json.loads((checkpoint / COMPLETE_MARKER).read_text()).get("fingerprint")
    except (OSError, ValueError):
        return None


def latest_complete_checkpoint(root: Path, expected: str | None = None) -> Path | None:
    """The newest checkpoint whose completion marker was written; half-written ones are skipped, and
    with `expected` so are (and removed) those of another run: they would resume the wrong training."""
    found = None
    for _, path in reversed(_checkpoints(root)):
        if not is_complete(path):
            log.warning("ignoring incomplete checkpoint %s (interrupted while it was written)", path)
        elif expected is not None and (seen := checkpoint_fingerprint(path)) != expected:
            log.warning("ignoring checkpoint %s: it was written for another config or data (fingerprint %s, this "
                        "run %s); removing it and training from the start", path, seen, expected)
            if is_main_process():
                shutil.rmtree(path, ignore_errors=True)
        elif found is None:
            found = path
    return found


class CompleteCheckpoints(TrainerCallback):
    """Marks each checkpoint complete after the Trainer has written all of it, then keeps the
    newest `keep` complete ones and drops incomplete leftovers; also checkpoints the last step.

    The Trainer writes checkpoint-N in place, so its own rotation could delete the last good
    checkpoint while the new one is unfinished; we rotate only after the marker is on disk.
    """

    def __init__(self, keep: int | None, fingerprint: str | None = None):
        self.keep = keep
        self.fingerprint = fingerprint

    def on_step_end(self, args, state, control, **kwargs):
        # A checkpoint at the last step makes a retried pod (say, after a failed push) skip training.
        if state.global_step >= state.max_steps:
            control.should_save = True
        return control

    def on_save(self, args, state, control, **kwargs):
        if not args.should_save:
            return
        root = Path(args.output_dir)
        current = root / f"checkpoint-{state.global_step}"
        _write_atomic(current / COMPLETE_MARKER, json.dumps({"global_step": state.global_step,
                                                                 "fingerprint": self.fingerprint}))
        log.info("checkpoint complete: %s", current)
        complete = [p for _, p in _checkpoints(root) if is_complete(p)]
        stale = [p for _, p in _checkpoints(root) if not is_complete(p)]
        if self.keep is not None:
            stale += complete[: -self.keep]
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)


class StopOnSigterm(TrainerCallback):
    """On SIGTERM (pod eviction, node drain, spot preemption), finish the current step, save a
    checkpoint and stop; the caller then exits non-zero so the Job runs the pod again.

    With several ranks the decision is agreed after every step (one all-reduce of a flag): a rank
    that stopped alone would leave the others waiting in the next gradient all-reduce forever.
    """

    def __init__(self) -> None:
        self.received = False
        self._previous = None

    def install(self) -> None:
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def uninstall(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _handle(self, signum, frame) -> None:
        log.warning("SIGTERM received: checkpointing after the current step, then exiting")
        self.received = True

    def on_step_end(self, args, state, control, **kwargs):
        self.received = agree(self.received, getattr(args, "device", None))
        if self.received:
            control.should_save = True
            control.should_training_stop = True
        return control


class JsonLinesLog(TrainerCallback):
    """Every Trainer log record (loss, learning rate, grad norm, eval) as one JSON line."""

    def __init__(self, path: Path, resumed_step: int = 0):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # A resumed run repeats the steps after its checkpoint: drop their earlier records.
        kept = []
        if resumed_step and path.is_file():
            kept = [line for line in path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= resumed_step]
        path.write_text("".join(line + "\n" for line in kept))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "epoch": state.epoch, **logs}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
