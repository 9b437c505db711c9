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


def _defined(path) -> set[str]:
    return set(re.findall(r"^def (test_\w+)", path.read_text(), re.M))


def test_every_test_it_and_the_pipeline_doc_cite_as_evidence_exists():
    """A citation names one test exactly (a renamed test leaves a stale citation behind); where the file is
    written before `::`, the test is defined in that file."""
    docs = RUNBOOK + (REPO_ROOT / "docs" / "gitops.md").read_text()
    defined = set().union(*(_defined(p) for p in (REPO_ROOT / "tests").rglob("test_*.py")))
    cited = re.findall(r"(tests/[\w/]+\.py)?::(test_\w+)(\*?)", docs)
    assert cited
    missing = sorted(f"{path}::{name}{star}" for path, name, star in cited
                     if star or name not in (_defined(REPO_ROOT / path) if path else defined))
    assert not missing, missing
