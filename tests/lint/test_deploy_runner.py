"""scripts/deploy-runner.sh and scripts/runner-setup.sh: the self-hosted runner prod's jobs run on. Valid
bash, shellcheck-clean, bad arguments refused, and the laptop-side flow run against stand-ins for `pulumi`,
`az` and `gh` that record each call: the VM goes into the stack's runner subnet without a public IP, is
reused on a second run, and registers with the label the workflows ask for. Azure and GitHub are not
reachable here: what the real CLIs and the runner do with these calls is not tested. bash -n and shellcheck:
tests/lint/test_bootstrap.py, over every script."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from infra.specs import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "deploy-runner.sh"
SETUP = REPO_ROOT / "scripts" / "runner-setup.sh"
SUBNET = "/subscriptions/s/resourceGroups/kaito-prod-rg/providers/Microsoft.Network/virtualNetworks/v/subnets/runner"

STUBS = {
    "pulumi": f'echo "pulumi $*" >> "$STUB_LOG"; [[ ${{STUB_SUBNET:-1}} == 1 ]] && echo {SUBNET} || exit 255\n',
    "az": 'echo "az $*" >> "$STUB_LOG"\ncase "$*" in "vm show"*) [[ ${STUB_EXISTS:-0} == 1 ]] || exit 3 ;; esac\n',
    "gh": 'echo "gh $*" >> "$STUB_LOG"; echo REGISTRATION-TOKEN\n',
}


@pytest.mark.parametrize("args, message", [
    ([], "usage: scripts/deploy-runner.sh <env>"),
    (["prod", "--repo", "not-a-repo"], "--repo must be <owner>/<name>"),
    (["prod", "--repo", "o/r", "--colour", "blue"], "usage:"),
    (["staging", "--repo", "o/r"], "no stack file"),
])
def test_bad_arguments_exit_2_with_a_message(args, message):
    result = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def _run(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in STUBS.items():
        (bin_dir / name).write_text("#!/usr/bin/env bash\n" + body)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "calls.log"
    log.write_text("")
    result = subprocess.run(["bash", str(SCRIPT), "prod", "--repo", "example-org/kaito-gitops"], capture_output=True,
                            text=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_LOG": str(log), **env})
    return result, log.read_text().splitlines()


def test_the_vm_goes_into_the_runner_subnet_without_a_public_ip_and_registers_the_prod_label(tmp_path: Path):
    result, calls = _run(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    create = next(c for c in calls if c.startswith("az vm create"))
    assert f"--subnet {SUBNET} " in create and "--location eastus2 " in create  # Pulumi.prod.yaml's region
    assert "--public-ip-address  " in create and "--nsg  " in create, "no public IP, no NSG: az takes '' as none"
    assert "--nic-delete-option Delete --os-disk-delete-option Delete" in create, "its NIC would pin the subnet"
    assert "gh api --method POST repos/example-org/kaito-gitops/actions/runners/registration-token --jq .token" in calls
    invoke = next(c for c in calls if c.startswith("az vm run-command invoke"))
    assert f"--scripts @{SETUP} " in invoke
    assert "--parameters example-org/kaito-gitops REGISTRATION-TOKEN kaito-gitops-prod " in invoke


def test_a_second_run_reuses_the_vm(tmp_path: Path):
    result, calls = _run(tmp_path, STUB_EXISTS="1")
    assert result.returncode == 0 and not [c for c in calls if c.startswith("az vm create")], calls


def test_a_stack_without_a_runner_subnet_is_refused_before_anything_is_created(tmp_path: Path):
    result, calls = _run(tmp_path, STUB_SUBNET="0")
    assert result.returncode == 1 and "set kaito-gitops:runnerSubnetCidr" in result.stderr, result.stderr
    assert not [c for c in calls if c.startswith(("az", "gh"))], calls


def test_the_runner_registers_unattended_with_its_label_and_runs_as_a_service():
    """config.sh refuses root, hence its own user; svc.sh installs the systemd unit for that user
    (GitHub docs, "Configuring the self-hosted runner application as a service")."""
    text = SETUP.read_text()
    assert 'sudo -u "$USER_NAME" ./config.sh --url "https://github.com/$REPO" --token "$TOKEN" --labels "$LABEL"' in text
    assert "--unattended" in text and './svc.sh install "$USER_NAME"' in text and "./svc.sh start" in text
