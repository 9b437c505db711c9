"""docs/infrastructure.md's runbook names only what exists: repository scripts and files, make targets,
`python -m infra.*` modules, `kaito-gitops` commands and the stack outputs it reads. The az, pulumi, kubectl
and kubelogin commands it names are checked against their documentation by hand, not here."""

from __future__ import annotations

import importlib.util
import re

from infra.cli import COMMANDS
from infra.specs import REPO_ROOT

RUNBOOK = (REPO_ROOT / "docs" / "infrastructure.md").read_text()
PROGRAM = (REPO_ROOT / "infra" / "program.py").read_text()


def test_every_script_and_repository_path_it_names_exists():
    paths = set(re.findall(r"(?<![\w/.-])((?:scripts|infra|tests|docs|\.github)/[\w./-]+\.(?:sh|py|md|yaml|yml))", RUNBOOK))
    assert {"scripts/bootstrap.sh", "scripts/deploy-runner.sh"} <= paths
    missing = sorted(p for p in paths if not (REPO_ROOT / p).exists())
    assert not missing, missing


def test_every_make_target_it_names_exists():
    targets = set(re.findall(r"^([A-Za-z][\w.-]*):", (REPO_ROOT / "Makefile").read_text(), re.M))
    named = set(re.findall(r"\bmake ([a-z][\w-]*)", RUNBOOK))
    assert named and named <= targets, named - targets


def test_every_python_module_and_cli_command_it_names_exists():
    modules = set(re.findall(r"python -m (infra\.\w+)", RUNBOOK))
    assert modules and all(importlib.util.find_spec(m) for m in modules), modules
    commands = set(re.findall(r"kaito-gitops (plan|render|validate|diff|new|dataset|\w+) ", RUNBOOK))
    commands -= {"infra"}  # `kaito-gitops:infra:*` type tokens
    assert commands <= set(COMMANDS), commands - set(COMMANDS)


def test_every_stack_output_it_reads_is_exported():
    read = set(re.findall(r"pulumi stack output (\w+)", RUNBOOK))
    assert {"cluster_name", "runner_egress_ip"} <= read
    for name in read:
        assert f'pulumi.export("{name}"' in PROGRAM, f"no stack output {name!r} (infra/program.py)"


def test_every_test_it_and_the_pipeline_doc_cite_as_evidence_exists():
    cited = set(re.findall(r"::(test_\w+)", RUNBOOK + (REPO_ROOT / "docs" / "gitops.md").read_text()))
    defined = {m for p in (REPO_ROOT / "tests").rglob("test_*.py") for m in re.findall(r"^def (test_\w+)", p.read_text(), re.M)}
    # `test_a_failed_preview_*` style prefixes stand for a family of tests
    missing = sorted(c for c in cited if c not in defined and not any(d.startswith(c) for d in defined))
    assert cited and not missing, missing
