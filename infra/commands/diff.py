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
    from infra.diagnostics import SpecError, escape
    from infra.diff import RefError, default_base, diff_objects, environment_at_ref
    from infra.render import render_environment
    from infra.specs import environments

    if args.env not in environments():
        return load_or_report(args.env)  # says which environments there are
    base = args.base or default_base()
    try:  # the base first: a quota breach is then reported on what the change adds or alters
        base_env = environment_at_ref(args.env, base)
    except RefError as exc:
        print(f"kaito-gitops diff: {escape(str(exc))}", file=sys.stderr)
        return 2
    except SpecError as error:  # the base had invalid specs: compare against nothing, say so
        print(f"note: the specs at {escape(base)} do not validate ({len(error.diagnostics)} problem(s)); "
              "showing everything as added", file=sys.stderr)
        base_env = None
    env = load_or_report(args.env, base_env)
    if isinstance(env, int):
        return env
    old = render_environment(base_env) if base_env is not None else []
    changes = diff_objects(old, render_environment(env))
    if not changes:
        print(f"no changes in {args.env} against {escape(base)}")
        return 0
    counts = {a: sum(c.action == a for c in changes) for a in ("added", "changed", "replaced", "removed")}
    print(f"{args.env} against {escape(base)}: "
          + ", ".join(f"{n} {a}" for a, n in counts.items() if n or a != "replaced"))
    for change in changes:
        print(f"\n{change.action}: {change.title}")
        print(change.diff, end="")
    return 0
