"""`kaito-gitops validate [PATH...]`: check workload specs before they merge."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def register(subparsers) -> None:
    parser = subparsers.add_parser("validate", help="validate workload specs (default: every environment)")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="files or folders under a workloads/ folder; a file is checked in the context of "
                             "its whole environment")
    parser.set_defaults(handler=run)


class _Usage(Exception):
    pass


def run(args: argparse.Namespace) -> int:
    from infra.commands.common import print_problems
    from infra.diagnostics import SpecError
    from infra.specs import WORKLOADS_DIR, environments, load_environment, workload_files

    try:
        selected = _select(args.paths, WORKLOADS_DIR, environments)
    except _Usage as problem:
        print(f"kaito-gitops validate: {problem}", file=sys.stderr)
        return EXIT_USAGE
    shown, hidden, count, notices = set(), 0, 0, []
    for (root, env), paths in sorted(selected.items()):
        count += sum(1 for f in workload_files(root / env) if _within(f, paths))
        try:
            notices += [n for n in load_environment(env, root).notices if _within(Path(n.path), paths)]
        except SpecError as error:
            mine = {d for d in error.diagnostics if _within(Path(d.path), paths)}
            shown |= mine
            hidden += len(set(error.diagnostics) - mine)
    if shown:
        print_problems(shown)
    if hidden:  # the environment cannot deploy, so neither can the files asked for
        print(f"error: {hidden} problem(s) in other files of the same environment(s) stop it from deploying; "
              "see them with `kaito-gitops validate`", file=sys.stderr)
    if shown or hidden:
        return EXIT_INVALID
    for notice in notices:  # suggestions, on stderr: stdout stays the result, and the exit code 0
        print(notice, file=sys.stderr)
    environments_seen = len(selected)
    print(f"ok: {count} workload{'s' * (count != 1)} in {environments_seen} "
          f"environment{'s' * (environments_seen != 1)}")
    return EXIT_OK


def _select(raw_paths: list[str], default_root: Path, environments) -> dict[tuple[Path, str], list[Path]]:
    """(workloads root, environment) -> the paths asked for in it; a usage error for anything else."""
    from infra.diagnostics import escape

    selected: dict[tuple[Path, str], list[Path]] = {}
    for raw in raw_paths or [str(default_root)]:
        path = Path(os.path.abspath(raw))  # links are not followed: a linked spec is reported, not its target
        shown = escape(raw)
        if not os.path.lexists(path):
            raise _Usage(f"{shown}: no such file or folder")
        root = next((p for p in (path, *path.parents) if p.name == "workloads"), None)
        if root is None:
            raise _Usage(f"{shown}: not inside a workloads/ folder (specs live in workloads/<env>/)")
        if not path.is_dir() and path.suffix not in (".yaml", ".yml"):
            raise _Usage(f"{shown}: not a YAML file")
        parts = path.relative_to(root).parts
        if parts and not ((root / parts[0]).is_dir() or (root / parts[0]).is_symlink()):
            raise _Usage(f"{shown}: not inside an environment folder (workloads/<env>/)")
        envs = [parts[0]] if parts else environments(root)
        if not envs:
            raise _Usage(f"{shown}: no environment folders in it")
        for env in envs:
            selected.setdefault((root, env), []).append(path)
    return selected


def _within(target: Path, paths: list[Path]) -> bool:
    """Only report what was asked for; a defaults file always counts, every workload depends on it, and so
    does a problem with a folder holding what was asked for (a linked environment folder)."""
    target = Path(os.path.abspath(target))
    return target.name == "_defaults.yaml" or any(target == p or p in target.parents or target in p.parents
                                                  for p in paths)
