"""`kaito-gitops retire --env ENV FILE...`: retire the tuning jobs whose KAITO run has ended (infra/retire.py)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    from infra.specs import WORKLOADS_DIR

    parser = subparsers.add_parser("retire", help="add `retired: true` to tuning jobs whose KAITO run has ended")
    parser.add_argument("--env", required=True, help="the environment (workloads/<env>/)")
    parser.add_argument("objects", nargs="+", metavar="FILE",
                        help="output of `kubectl get workspaces.kaito.sh,jobs.batch -A -o json`; - for stdin")
    parser.add_argument("--write", action="store_true", help="edit the spec of each ended job (all or none)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="json: for the workflow")
    parser.add_argument("--workloads", type=Path, default=WORKLOADS_DIR,
                        help="the folder holding <env>/ (default: the repo's workloads/)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from infra.retire import run as retire

    return retire(args)
