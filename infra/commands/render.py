"""`kaito-gitops render --env ENV --out DIR`: plain manifests, one file per object."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("render", help="write the environment's Kubernetes manifests, one file per object")
    parser.add_argument("--env", required=True, help="environment (a folder under workloads/)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (new, empty, or written by render)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from infra.commands.common import load_or_report
    from infra.diagnostics import escape
    from infra.render import OutputDirError, render_environment, write_manifests
    from infra.specs import WORKLOADS_DIR

    out = args.out.resolve()
    workloads = WORKLOADS_DIR.resolve()
    if out == workloads or workloads in out.parents:
        print(f"kaito-gitops render: --out {escape(str(args.out))} is inside workloads/, where rendered files "
              f"would be read as specs or replace them (choose a folder outside it, e.g. --out out/{escape(args.env)})",
              file=sys.stderr)
        return 2
    env = load_or_report(args.env)
    if isinstance(env, int):
        return env
    objects = render_environment(env)
    try:
        written = write_manifests(objects, args.out)
    except (OutputDirError, OSError) as exc:
        print(f"kaito-gitops render: {escape(str(exc))}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} manifest(s) for {args.env} to {escape(str(args.out))}")
    return 0
