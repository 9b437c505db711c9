"""`kaito-gitops plan --env ENV`: what `pulumi up` would do, with no Azure credentials and no engine."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser("plan", help="print what `pulumi up` would create for an environment (offline)")
    parser.add_argument("--env", action="append", required=True,
                        help="environment / Pulumi stack (repeatable with --format markdown)")
    parser.add_argument("--format", choices=("text", "json", "markdown"), default="text",
                        help="text (default), json, or markdown (the pull-request comment)")
    parser.add_argument("--base", help="markdown: git ref to compare with (default: origin/main if present, else HEAD)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from infra.commands.common import print_problems
    from infra.diagnostics import escape
    from infra.diff import RefError, default_base
    from infra.config import ConfigError
    from infra.diagnostics import SpecError
    from infra.plan import build_plan, format_json, format_text, stacks
    from infra.specs import WORKLOADS_DIR, environments

    known = sorted(set(stacks()) & set(environments(WORKLOADS_DIR)))
    unknown = [e for e in args.env if e not in known]
    if unknown:
        print(f"kaito-gitops plan: unknown environment {unknown[0]!r}; stacks with workloads: {', '.join(known)}",
              file=sys.stderr)
        return 2
    if len(args.env) > 1 and args.format != "markdown":
        print("kaito-gitops plan: several --env need --format markdown", file=sys.stderr)
        return 2
    plans = []
    for env in args.env:
        try:
            plans.append(build_plan(env, base=_base_environment(env, args) if args.format == "markdown" else None))
        except ConfigError as error:
            for problem in error.problems:
                print(f"Pulumi.{env}.yaml: {escape(problem)}")
            return 1
        except SpecError as error:
            return print_problems(error.diagnostics)
        except RefError as exc:
            print(f"kaito-gitops plan: {escape(str(exc))}", file=sys.stderr)
            return 2
    if args.format == "markdown":
        from infra.review import format_markdown

        try:
            print(format_markdown(plans, args.base or default_base()), end="")
        except RefError as exc:
            print(f"kaito-gitops plan: {escape(str(exc))}", file=sys.stderr)
            return 2
        return 0
    print(format_json(plans[0]) if args.format == "json" else format_text(plans[0]))
    return 0


def _base_environment(env: str, args: argparse.Namespace):
    """The environment at the compared ref, so a quota breach names what the change adds; None if unusable."""
    from infra.diagnostics import SpecError
    from infra.diff import default_base, environment_at_ref

    try:
        return environment_at_ref(env, args.base or default_base())
    except SpecError:  # the comment says the base does not validate
        return None
