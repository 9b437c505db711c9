"""`kaito-gitops dataset check FILE`: the trainer's view of a data file, before a GPU is booked."""

from __future__ import annotations

import argparse
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
    if args.max_seq_length < 1:
        print(f"kaito-gitops dataset check: --max-seq-length must be at least 1, got {args.max_seq_length}",
              file=sys.stderr)
        return 2
    if not args.file.is_file():
        print(f"kaito-gitops dataset check: {args.file}: no such file", file=sys.stderr)
        return 2
    try:
        from trainer.dataset_check import check_file, format_report
    except ImportError as err:
        print(f"kaito-gitops dataset check: needs the trainer's dependencies ({err.name} is missing); "
              "install them with: .venv/bin/pip install -e '.[trainer]'", file=sys.stderr)
        return 2
    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(args.tokenizer), local_files_only=True)
        except (OSError, ValueError) as err:
            print(f"kaito-gitops dataset check: --tokenizer {args.tokenizer}: {str(err).splitlines()[0]}",
                  file=sys.stderr)
            return 2
    report = check_file(args.file, tokenizer, args.max_seq_length)
    print(json.dumps(report.as_dict(), indent=2) if args.json else format_report(report))
    return 1 if report.errors else 0
