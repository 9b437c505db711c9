"""`python -m trainer` / `kaito-trainer`: train (default), `check` a config, or `package` an adapter.

Exit codes (the bundled Job's podFailurePolicy relies on them):
  0    success
  1    unexpected failure (a retry may help: node or GPU trouble)
  2    bad configuration or input: fix training_config.yaml or the data, retrying cannot help; also out of GPU
       memory, since a rerun packs the same batches (same seed and data) and fails the same way
  143  stopped by SIGTERM after writing a checkpoint: run again to resume
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from trainer.config import DEFAULT_CONFIG_PATH, ConfigError, load_config
from trainer.data import DataError
from trainer.distributed import exit_if_grouped
from trainer.text import escape

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 143

log = logging.getLogger("trainer")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer", description="LoRA/QLoRA fine-tuning from KAITO's training_config.yaml.",
        epilog="Exit codes: 0 ok, 1 unexpected failure, 2 bad config or data, 143 SIGTERM (checkpointed).")
    sub = parser.add_subparsers(dest="command")
    for name, helptext in (("train", "fine-tune (the default command)"),
                           ("check", "check training_config.yaml without loading torch")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--config", default=DEFAULT_CONFIG_PATH, help="training_config.yaml (default: %(default)s)")
        if name == "train":
            p.add_argument("--data", default="/mnt/data", type=Path,
                           help="data directory; relative dataset paths are under it (default: %(default)s)")
            p.add_argument("--nproc-per-node", type=int, default=1, metavar="N",
                           help="training processes, one per GPU of the node (default: %(default)s)")
    pkg = sub.add_parser("package", help="lay an adapter out as KAITO's adapter image expects (/data/...)")
    pkg.add_argument("--adapter", required=True, type=Path, help="directory with the trained adapter")
    pkg.add_argument("--out", required=True, type=Path,
                     help="build context to write (Dockerfile, data/, layer, annotations); new, or an earlier run's")
    pkg.add_argument("--config", type=Path, help="training_config.yaml the adapter was trained with (its SHA-256 "
                     "is recorded)")
    pkg.add_argument("--data", type=Path, action="append", default=[],
                     help="data directory the trainer read, repeatable (one SHA-256 over all their files is recorded)")
    pkg.add_argument("--annotation", action="append", default=[], metavar="KEY=VALUE",
                     help="manifest annotation to record (repeatable)")
    return parser


def _escape_trainer_records(record: logging.LogRecord) -> bool:
    """Our log lines quote paths and file content: one printable line each (a traceback still follows intact)."""
    if record.name.split(".")[0] == "trainer":
        record.msg, record.args = escape(record.getMessage()), None
    return True


def _train(args) -> int:
    cfg = load_config(args.config)  # before importing torch: a bad config fails in a second
    if args.nproc_per_node < 1:
        print(f"error: --nproc-per-node must be at least 1, got {args.nproc_per_node}", file=sys.stderr)
        return EXIT_CONFIG
    if args.nproc_per_node > 1 and "RANK" not in os.environ:
        from trainer.distributed import launch

        return launch(["train", "--config", str(args.config), "--data", str(args.data)], args.nproc_per_node)
    from trainer.distributed import shutdown
    from trainer.train import Interrupted, run

    # Only where every rank got here (finished, or stopped after the step all agreed on): a rank that failed
    # leaves the group alone, since destroying it could wait on peers still in a collective.
    try:
        run(cfg, args.data)
    except Interrupted as stop:
        shutdown()
        log.warning("%s; exiting with %d so the Job runs the pod again", stop, EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    shutdown()
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv.insert(0, "train")  # KAITO's entry point takes no sub-command
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_escape_trainer_records)
    return exit_if_grouped(_command(args))


def _command(args) -> int:
    try:
        if args.command == "check":
            load_config(args.config)
            print(f"{escape(args.config)}: ok")
            return EXIT_OK
        if args.command == "package":
            from trainer.package import package_adapter, parse_annotations

            package_adapter(args.adapter, args.out, args.config, args.data, parse_annotations(args.annotation))
            print(f"adapter image context written to {escape(args.out)}")
            return EXIT_OK
        return _train(args)
    except (ConfigError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except Exception as err:  # noqa: BLE001 - the exit code decides whether the Job retries
        if type(err).__name__ == "OutOfMemoryError":
            print(f"error: out of GPU memory ({escape(str(err))[:500]}); retrying would fail the same way: lower "
                  "BundledConfig.max_tokens_per_batch (or TrainingArguments.per_device_train_batch_size without "
                  "it) or BundledConfig.max_seq_length, or use QLoRA", file=sys.stderr)
            return EXIT_CONFIG
        log.exception("training failed")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
