"""`kaito-gitops plan` exit codes: bad input is a message and a non-zero status, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

from infra.cli import main
from infra.specs import REPO_ROOT

INVALID = Path(__file__).resolve().parents[1] / "fixtures" / "invalid" / "bad-quantization"


def test_unknown_environment_exits_2_and_lists_the_stacks(capsys):
    assert main(["plan", "--env", "staging"]) == 2
    err = capsys.readouterr().err
    assert "unknown environment 'staging'; stacks with workloads: dev, prod" in err, err


def test_invalid_workloads_print_the_validator_diagnostics_and_exit_1(tmp_path, monkeypatch, capsys):
    shutil.copy(REPO_ROOT / "Pulumi.dev.yaml", tmp_path / "Pulumi.dev.yaml")
    shutil.copytree(INVALID / "workloads", tmp_path / "workloads")
    monkeypatch.setattr("infra.plan.build_plan.__defaults__", (tmp_path, None))
    monkeypatch.setattr("infra.specs.REPO_ROOT", tmp_path)
    assert main(["plan", "--env", "dev"]) == 1
    out = capsys.readouterr().out
    assert "$.spec.quantization: '2bit' is not allowed" in out, out


def test_json_format_lists_resources_with_parents(capsys):
    import json

    assert main(["plan", "--env", "dev", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    pool = next(r for r in plan["resources"] if r["type"] == "azure-native:containerservice:AgentPool")
    assert pool["parent"].endswith("kaito-gitops:infra:GpuPool::kaito-dev-gpua100"), pool["urn"]
