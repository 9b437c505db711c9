"""Entry point for `pulumi up`: the stack name picks the config and `workloads/<stack>/`."""

import sys

import pulumi

from infra.config import ConfigError, from_pulumi
from infra.diagnostics import SpecError
from infra.program import build
from infra.specs import load_environment

stack = pulumi.get_stack()
try:
    build(from_pulumi(stack), load_environment(stack))
except (ConfigError, SpecError) as error:
    # One line per problem, no traceback: the same messages as `kaito-gitops plan`.
    for line in error.problems if isinstance(error, ConfigError) else [str(d) for d in error.diagnostics]:
        pulumi.log.error(line)
    sys.exit(1)
