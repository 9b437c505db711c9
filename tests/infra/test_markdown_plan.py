"""The pull-request comment from `kaito-gitops plan --format markdown`: new workloads, their cost, the Azure side."""

from __future__ import annotations

import subprocess

import pytest

from infra.cli import main
from infra.specs import REPO_ROOT


def _root_commit() -> str:
    """The repository's first commit, which has no workloads: everything shows as added against it."""
    out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-list", "--max-parents=0", "HEAD"],
                         capture_output=True, text=True, check=True)
    return out.stdout.split()[-1]


def test_added_tuning_spec_shows_workspace_gpu_hours_and_cost(capsys):
    base = _root_commit()
    listed = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-tree", "-r", "--name-only", base, "workloads"],
                            capture_output=True, text=True, check=True).stdout
    if listed.strip():
        pytest.skip("shallow clone: the oldest commit available already has workloads")
    assert main(["plan", "--env", "dev", "--format", "markdown", "--base", base]) == 0
    md = capsys.readouterr().out
    assert md.startswith("<!-- kaito-gitops-plan -->")
    assert "| ➕ added | `phi3-dolly-qlora` | TuningJob | ml-platform |" in md
    assert "**added**: `Workspace ml-platform/phi3-dolly-qlora`" in md
    row = next(line for line in md.splitlines() if line.startswith("| `phi3-dolly-qlora` | Standard_NC24ads_A100_v4"))
    hours, payg = row.split("|")[5].strip(), row.split("|")[6].strip()
    assert float(hours) > 0 and payg.startswith("$"), row
    assert "**Azure resources** (westus3" in md and "1 ManagedCluster" in md


def test_no_change_against_head(capsys):
    assert main(["plan", "--env", "prod", "--format", "markdown", "--base", "HEAD"]) == 0
    assert "**Workloads**: no change." in capsys.readouterr().out


def test_several_environments_need_markdown(capsys):
    assert main(["plan", "--env", "dev", "--env", "prod"]) == 2
