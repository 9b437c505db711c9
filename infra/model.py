"""The validated, defaults-applied form of an environment's workload specs.

`infra.specs.load_environment` builds it; the renderer, the diff, the plan and
the Pulumi program read it. Nothing downstream re-reads the YAML files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.diagnostics import Diagnostic

API_VERSION = "kaito-gitops.dev/v1alpha1"
TUNING_KIND = "TuningJob"
INFERENCE_KIND = "InferenceDeployment"
DEFAULTS_KIND = "EnvironmentDefaults"


@dataclass(frozen=True)
class Workload:
    kind: str  # TUNING_KIND or INFERENCE_KIND
    name: str
    team: str
    namespace: str
    spec: dict[str, Any]  # the file's `spec` with the environment defaults applied
    path: Path  # the file it came from, for messages

    @property
    def retired(self) -> bool:
        """A finished tuning job kept for its adapter image: nothing of it is rendered or deployed."""
        return self.kind == TUNING_KIND and bool(self.spec.get("retired"))


@dataclass(frozen=True)
class Environment:
    name: str
    defaults: dict[str, Any]
    workloads: list[Workload] = field(default_factory=list)
    notices: list[Diagnostic] = field(default_factory=list)  # suggestions `validate` prints; never errors

    def by_name(self, name: str) -> Workload | None:
        return next((w for w in self.workloads if w.name == name), None)
