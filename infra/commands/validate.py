"""`kaito-gitops validate [PATH...]`: check workload specs before they merge."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.diagnostics import Diagnostic


def register(subparsers) -> None:
    parser = subparsers.add_parser("validate", help="validate workload specs (default: every environment)")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="files or folders under workloads/; a file is checked in the context of its environment")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from infra.diagnostics import SpecError
    from infra.specs import WORKLOADS_DIR, display_path, environments, load_environment

    root = WORKLOADS_DIR
    selected: dict[str, list[Path]] = {}
    for raw in args.paths or [str(root)]:
        path = Path(raw).resolve()
        if not path.exists():
            print(f"kaito-gitops validate: {raw}: no such file or folder", file=sys.stderr)
            return 2
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            print(f"kaito-gitops validate: {raw}: not under {display_path(root)}/", file=sys.stderr)
            return 2
        for env in [parts[0]] if parts else environments(root):
            selected.setdefault(env, []).append(path)

    problems: list[Diagnostic] = []
    count = 0
    for env, paths in sorted(selected.items()):
        try:
            count += len(load_environment(env, root).workloads)
        except SpecError as error:
            problems += [d for d in error.diagnostics if _within(d.path, paths)]
    for problem in sorted(set(problems)):
        print(problem)
    if problems:
        print(f"{len(set(problems))} problem(s) found", file=sys.stderr)
        return 1
    print(f"ok: {count} workload(s) in {len(selected)} environment(s)")
    return 0


def _within(shown: str, paths: list[Path]) -> bool:
    """Only report problems in what was asked for; a defaults file always counts."""
    target = Path(shown).resolve()
    return target.name == "_defaults.yaml" or any(target == p or p in target.parents for p in paths)
