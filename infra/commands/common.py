"""Helpers the sub-commands share: load an environment, or report why not."""

from __future__ import annotations

import sys

from infra.diagnostics import Diagnostic
from infra.model import Environment


def print_problems(problems: set[Diagnostic] | list[Diagnostic]) -> int:
    """Every problem on stdout, one line each and sorted, with the count on stderr; returns exit code 1."""
    unique = sorted(set(problems))
    for problem in unique:
        print(problem)
    print(f"{len(unique)} problem(s) found", file=sys.stderr)
    return 1


def load_or_report(env_name: str, base: Environment | None = None) -> Environment | int:
    """The environment, or the exit code after printing every problem (2 for an unknown env, 1 for bad specs).

    `base`: the environment at the compared ref, if any (see infra.specs.load_environment)."""
    from infra.diagnostics import SpecError, escape
    from infra.specs import WORKLOADS_DIR, environments, load_environment

    if env_name not in environments(WORKLOADS_DIR):
        print(f"kaito-gitops: unknown environment {env_name!r}; environments: "
              f"{escape(', '.join(environments(WORKLOADS_DIR)))}",
              file=sys.stderr)
        return 2
    try:
        return load_environment(env_name, base=base)
    except SpecError as error:
        return print_problems(error.diagnostics)
