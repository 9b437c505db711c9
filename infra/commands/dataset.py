"""`kaito-gitops dataset check FILE`: the trainer's view of a data file, before a GPU is booked."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("dataset", help="check a training data file")
    sub = parser.add_subparsers(dest="dataset_command", metavar="ACTION")
    sub.required = True
    check = sub.add_parser("check", help="rows, usable rows, token lengths, duplicates, likely secrets or personal data")
    check.add_argument("file", type=Path, help="parquet, jsonl, json or csv file")
    check.add_argument("--tokenizer", type=Path, help="the base model's directory, for exact token counts")
    check.add_argument("--max-seq-length", type=int, default=2048, help="truncation length (default: %(default)s)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from infra.diagnostics import escape

    if args.max_seq_length < 1:
        print(f"kaito-gitops dataset check: --max-seq-length must be at least 1, got {args.max_seq_length}",
              file=sys.stderr)
        return 2
    shown = escape(str(args.file))
    if not args.file.is_file():
        print(f"kaito-gitops dataset check: {shown}: no such file", file=sys.stderr)
        return 2
    missing = _missing(["datasets", "pyarrow"] + (["transformers"] if args.tokenizer else []))
    if missing:
        return _needs_extra(missing)
    try:
        from trainer.dataset_check import check_file, format_report
    except ImportError as err:
        return _needs_extra(err.name or "a dependency")
    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(args.tokenizer), local_files_only=True)
        except (OSError, ValueError) as err:
            print(f"kaito-gitops dataset check: --tokenizer {escape(str(args.tokenizer))}: "
                  f"{escape(str(err).splitlines()[0] if str(err) else type(err).__name__)}", file=sys.stderr)
            return 2
    try:
        report = check_file(args.file, tokenizer, args.max_seq_length)
    except ImportError as err:
        return _needs_extra(err.name or "a dependency")
    except OSError as err:
        print(f"kaito-gitops dataset check: {shown}: cannot be read ({escape(err.strerror or str(err))})",
              file=sys.stderr)
        return 2
    if args.json:  # json.dumps writes control and non-ASCII characters as \\u escapes
        print(json.dumps(report.as_dict(), indent=2))
    else:  # file names and errors quote the user's file: one line each
        print(format_report(dataclasses.replace(
            report, file=escape(report.file), errors=[escape(e) for e in report.errors],
            unusable={escape(k): v for k, v in report.unusable.items()})))
    return 1 if report.errors else 0


def _missing(modules: list[str]) -> str | None:
    """The first module that cannot be imported, found without importing anything heavy."""
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):
            return name
    return None


def _needs_extra(module: str) -> int:
    print(f"kaito-gitops dataset check: needs the trainer's dependencies ({module} is not installed); "
          "install them with: pip install 'kaito-gitops[trainer]'", file=sys.stderr)
    return 2
