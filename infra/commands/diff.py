"""`kaito-gitops diff --env ENV [--base REF]`: what the change does to the rendered objects."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser("diff", help="show added, changed and removed objects against a git ref")
    parser.add_argument("--env", required=True, help="environment (a folder under workloads/)")
    parser.add_argument("--base", help="git ref to compare with (default: origin/main if present, else HEAD)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from infra.commands.common import load_or_report
    from infra.diagnostics import SpecError
    from infra.diff import RefError, default_base, diff_objects, render_at_ref
    from infra.render import render_environment

    env = load_or_report(args.env)
    if isinstance(env, int):
        return env
    base = args.base or default_base()
    try:
        old = render_at_ref(args.env, base)
    except RefError as exc:
        print(f"kaito-gitops diff: {exc}", file=sys.stderr)
        return 2
    except SpecError as error:  # the base had invalid specs: compare against nothing, say so
        print(f"note: the specs at {base} do not validate ({len(error.diagnostics)} problem(s)); "
              "showing everything as added", file=sys.stderr)
        old = []
    changes = diff_objects(old, render_environment(env))
    if not changes:
        print(f"no changes in {args.env} against {base}")
        return 0
    counts = {a: sum(c.action == a for c in changes) for a in ("added", "changed", "replaced", "removed")}
    print(f"{args.env} against {base}: " + ", ".join(f"{n} {a}" for a, n in counts.items() if n or a != "replaced"))
    for change in changes:
        print(f"\n{change.action}: {change.title}")
        print(change.diff, end="")
    return 0
