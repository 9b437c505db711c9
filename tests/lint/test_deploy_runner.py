"""scripts/deploy-runner.sh and scripts/runner-setup.sh: prod's two self-hosted runners, the deploy runner
and the read-only one. Bad arguments are refused; the laptop-side flow runs against stand-ins for `pulumi`,
`az` and `gh` that record each call: the VM goes into the stack's runner subnet without a public IP, is
reused on a second run, registers with the label of its role, keeps the registration token off every
command line, and succeeds only once GitHub lists the runner online. runner-setup.sh itself runs in a
sandbox whose PATH holds only stand-ins and a few real tools (tar, sha256sum, coreutils): the runner archive
is checked against the pinned SHA-256, every tool the prod jobs need must be there, and config.sh gets the
token from its environment. Azure and GitHub are not reachable here: what the real CLIs, the RunCommand
extension and the runner do with these calls is not tested. bash -n and shellcheck:
tests/lint/test_bootstrap.py, over every script."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from infra.specs import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "deploy-runner.sh"
SETUP = REPO_ROOT / "scripts" / "runner-setup.sh"
SUBNET = "/subscriptions/s/resourceGroups/kaito-prod-rg/providers/Microsoft.Network/virtualNetworks/v/subnets/runner"

STUBS = {
    "pulumi": f'echo "pulumi $*" >> "$STUB_LOG"\n'
              f'[[ ${{STUB_SUBNET:-1}} == 1 ]] && echo {SUBNET} || {{ echo "error: no output named runner_subnet_id" >&2; exit 255; }}\n',
    # az reads an @<file> argument from the file: record what each such file (but the script) held.
    "az": 'echo "az $*" >> "$STUB_LOG"\n'
          'for a in "$@"; do [[ $a == @* && $a != *.sh ]] && cat "${a#@}" >> "$STUB_FILES"; done\n'
          'case "$*" in "vm show"*) [[ ${STUB_EXISTS:-0} == 1 ]] || exit 3 ;; esac\n',
    # Each look at the runner list answers the next line of $STUB_STATUSES (the last one repeats); "none":
    # no runner of that name.
    "gh": 'echo "gh $*" >> "$STUB_LOG"\n'
          'case "$*" in *registration-token*) echo REGISTRATION-TOKEN ;;\n'
          '  *) status=$(head -n1 "$STUB_STATUSES"); [[ $(wc -l < "$STUB_STATUSES") -gt 1 ]] && sed -i 1d "$STUB_STATUSES"\n'
          '     [[ $status == none ]] || echo "$status" ;;\nesac\n',
    "sleep": 'exit 0\n',
}


@pytest.mark.parametrize("args, message", [
    ([], "usage: scripts/deploy-runner.sh <env>"),
    (["prod", "--role", "deploy", "--repo", "not-a-repo"], "--repo must be <owner>/<name>"),
    (["prod", "--repo", "o/r"], "--role must be deploy"),
    (["prod", "--role", "admin", "--repo", "o/r"], "--role must be deploy"),
    (["prod", "--role", "deploy", "--repo", "o/r", "--colour", "blue"], "usage:"),
    (["staging", "--role", "deploy", "--repo", "o/r"], "no stack file"),
])
def test_bad_arguments_exit_2_with_a_message(args, message):
    result = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def _run(tmp_path: Path, *args: str, statuses: tuple[str, ...] = ("none", "online"),
         **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    (tmp_path / "statuses").write_text("\n".join(statuses) + "\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in STUBS.items():
        (bin_dir / name).write_text("#!/usr/bin/env bash\n" + body)
        (bin_dir / name).chmod(0o755)
    log, files = tmp_path / "calls.log", tmp_path / "files.log"
    log.write_text("")
    files.write_text("")
    result = subprocess.run(["bash", str(SCRIPT), "prod", "--repo", "example-org/kaito-gitops", *args],
                            capture_output=True, text=True,
                            env={"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_LOG": str(log), "STUB_FILES": str(files),
                                 "STUB_STATUSES": str(tmp_path / "statuses"),
                                 "DEPLOY_RUNNER_ATTEMPTS": "3", **env})
    return result, log.read_text().splitlines()


@pytest.mark.parametrize("role, label", [("deploy", "kaito-gitops-prod-deploy"), ("read-only", "kaito-gitops-prod")])
def test_each_role_gets_its_own_vm_in_the_runner_subnet_and_registers_its_label(tmp_path: Path, role, label):
    result, calls = _run(tmp_path, "--role", role)
    assert result.returncode == 0, result.stdout + result.stderr
    vm = f"{label}-runner"
    create = next(c for c in calls if c.startswith("az vm create"))
    assert f"--name {vm} " in create and f"--subnet {SUBNET} " in create
    assert "--location eastus2 " in create  # Pulumi.prod.yaml's region
    assert "--public-ip-address  " in create and "--nsg  " in create, "no public IP, no NSG: az takes '' as none"
    assert "--nic-delete-option Delete --os-disk-delete-option Delete" in create, "its NIC would pin the subnet"
    assert f"pulumi stack output runner_subnet_id --stack prod --cwd {REPO_ROOT}" in calls
    assert "gh api --method POST repos/example-org/kaito-gitops/actions/runners/registration-token --jq .token" in calls
    invoke = next(c for c in calls if c.startswith("az vm run-command invoke"))
    assert f"--scripts @{SETUP} " in invoke
    parameters = invoke.split("--parameters ")[1].split(" --query")[0].split()
    assert parameters[0] == "https://github.com/example-org/kaito-gitops" and parameters[2:] == [label, vm], parameters
    assert parameters[1].startswith("@"), "the token goes in a file az reads, not on its command line"
    assert (tmp_path / "files.log").read_text().strip() == "REGISTRATION-TOKEN"
    assert not [c for c in calls if "REGISTRATION-TOKEN" in c], "the token is on a command line"
    assert f'gh api --paginate repos/example-org/kaito-gitops/actions/runners --jq .runners[] | select(.name == "{vm}") | .status' in calls
    assert f"Runner {vm} is online" in result.stdout


def test_a_runner_that_never_comes_online_fails_the_script(tmp_path: Path):
    """The Linux RunCommand extension reports success even when the script failed (Azure/azure-cli#14425), so
    the run-command's answer cannot be trusted: only GitHub's list of runners can."""
    result, calls = _run(tmp_path, "--role", "deploy", statuses=("none", "offline"))
    assert result.returncode == 1, result.stdout
    assert "kaito-gitops-prod-deploy-runner is not online" in result.stderr and "status: offline" in result.stderr
    assert len([c for c in calls if c.startswith("gh api --paginate")]) == 1 + 3, "bounded by DEPLOY_RUNNER_ATTEMPTS"


@pytest.mark.parametrize("status, code, message", [
    ("online", 0, "already registered and online"),
    ("offline", 1, "registered but offline"),
])
def test_a_registered_runner_gets_no_new_registration_token(tmp_path: Path, status, code, message):
    """A registration token registers any runner under any label for an hour; made for a VM whose runner
    already takes jobs, it would be visible to those jobs while the set-up runs."""
    result, calls = _run(tmp_path, "--role", "deploy", statuses=(status,), STUB_EXISTS="1")
    assert result.returncode == code and message in result.stdout + result.stderr, result.stdout + result.stderr
    assert not [c for c in calls if "registration-token" in c or c.startswith("az vm run-command")], calls


def test_a_runner_group_registers_the_runner_on_the_organization(tmp_path: Path):
    """Runner groups hold organization runners only (GitHub docs, "Managing access to self-hosted runners
    using groups")."""
    result, calls = _run(tmp_path, "--role", "deploy", "--runner-group", "prod-deploy")
    assert result.returncode == 0, result.stderr
    assert "gh api --method POST orgs/example-org/actions/runners/registration-token --jq .token" in calls
    invoke = next(c for c in calls if c.startswith("az vm run-command invoke"))
    parameters = invoke.split("--parameters ")[1].split(" --query")[0].split()
    assert parameters[0] == "https://github.com/example-org" and parameters[-1] == "prod-deploy", parameters
    assert [c for c in calls if c.startswith("gh api --paginate orgs/example-org/actions/runners ")]


def test_a_second_run_reuses_the_vm(tmp_path: Path):
    result, calls = _run(tmp_path, "--role", "deploy", STUB_EXISTS="1")
    assert result.returncode == 0 and not [c for c in calls if c.startswith("az vm create")], calls


def test_a_stack_without_a_runner_subnet_is_refused_before_anything_is_created(tmp_path: Path):
    result, calls = _run(tmp_path, "--role", "deploy", STUB_SUBNET="0")
    assert result.returncode == 1 and "set kaito-gitops:runnerSubnetCidr" in result.stderr, result.stderr
    assert "error: no output named runner_subnet_id" in result.stderr, "pulumi's own error is kept"
    assert not [c for c in calls if c.startswith(("az", "gh"))], calls


# --- runner-setup.sh, on a stand-in VM ----------------------------------------------------------------------

SETUP_STUBS = {
    "apt-get": 'echo "apt-get $*" >> "$STUB_LOG"\n',
    "curl": 'echo "curl $*" >> "$STUB_LOG"\n'
            'while [[ $# -gt 0 ]]; do [[ $1 == -o ]] && out=$2; url=$1; shift; done\n'
            '[[ $url == */actions-runner-linux-x64-* ]] && cp "$STUB_ARCHIVE" "$out"\n',
    # `az aks install-cli` puts kubectl (and kubelogin) into a directory on PATH, as the real one does.
    "az": 'echo "az $*" >> "$STUB_LOG"\n'
          '[[ "$*" == "aks install-cli"* && ${STUB_INSTALLS_KUBECTL:-1} == 1 ]] && '
          'printf "#!/bin/sh\\n" > "$(dirname "$0")/kubectl" && chmod +x "$(dirname "$0")/kubectl"\nexit 0\n',
    "gh": 'exit 0\n', "git": 'exit 0\n', "jq": 'exit 0\n', "make": 'exit 0\n', "dpkg": 'echo amd64\n',
    "id": 'exit 0\n', "useradd": 'exit 0\n',
    "getent": 'echo "github-runner:x:1001:1001::$STUB_HOME:/bin/bash"\n',
    # sudo [--preserve-env=VARS] -u USER COMMAND...: runs COMMAND (the environment is kept either way here).
    "sudo": 'echo "sudo $*" >> "$STUB_LOG"\n'
            'while [[ $1 == -* ]]; do [[ $1 == -u ]] && shift; shift; done\nexec "$@"\n',
}
# The runner archive's own scripts, recording how they were called.
RUNNER_FILES = {
    "config.sh": 'echo "config.sh $* token=${ACTIONS_RUNNER_INPUT_TOKEN:-}" >> "$STUB_LOG"; touch .runner\n',
    "svc.sh": 'echo "svc.sh $*" >> "$STUB_LOG"\n',
    "bin/installdependencies.sh": 'echo "installdependencies.sh" >> "$STUB_LOG"\n',
}
REAL_TOOLS = ("bash", "cat", "cut", "tar", "gzip", "mktemp", "rm", "mkdir", "cp", "chmod", "install", "touch",
              "sha256sum", "dirname")


def _setup(tmp_path: Path, *, trust_checksum: bool, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """runner-setup.sh with a PATH of stand-ins and the few real tools it needs; with trust_checksum, a
    sha256sum stand-in accepts the test archive (whose digest cannot be the pinned release's)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in REAL_TOOLS:
        os.symlink(shutil.which(tool), bin_dir / tool)
    stubs = dict(SETUP_STUBS)
    if trust_checksum:
        (bin_dir / "sha256sum").unlink()
        stubs["sha256sum"] = 'echo "sha256sum $* $(cat)" >> "$STUB_LOG"\n'
    for name, body in stubs.items():
        (bin_dir / name).write_text("#!/usr/bin/env bash\n" + body)
        (bin_dir / name).chmod(0o755)
    content = tmp_path / "archive"
    for name, body in RUNNER_FILES.items():
        (content / name).parent.mkdir(parents=True, exist_ok=True)
        (content / name).write_text("#!/usr/bin/env bash\n" + body)
        (content / name).chmod(0o755)
    with tarfile.open(tmp_path / "runner.tar.gz", "w:gz") as archive:
        for path in content.rglob("*"):
            archive.add(path, arcname=str(path.relative_to(content)))
    (tmp_path / "home").mkdir()
    log = tmp_path / "setup.log"
    log.write_text("")
    result = subprocess.run(["bash", str(SETUP), "https://github.com/example-org/kaito-gitops", "REGISTRATION-TOKEN",
                             "kaito-gitops-prod-deploy", "kaito-gitops-prod-deploy-runner"],
                            capture_output=True, text=True,
                            env={"PATH": str(bin_dir), "STUB_LOG": str(log), "STUB_HOME": str(tmp_path / "home"),
                                 "STUB_ARCHIVE": str(tmp_path / "runner.tar.gz"), **env})
    return result, log.read_text().splitlines()


def test_the_runner_registers_unattended_with_its_label_the_token_in_its_environment_and_runs_as_a_service(tmp_path: Path):
    """config.sh refuses root, hence its own user; it reads options from ACTIONS_RUNNER_INPUT_<NAME>
    (actions/runner src/Runner.Listener/CommandSettings.cs); svc.sh installs the systemd unit for that user
    (GitHub docs, "Configuring the self-hosted runner application as a service")."""
    result, calls = _setup(tmp_path, trust_checksum=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "az aks install-cli --only-show-errors" in calls, "kubectl comes from az aks install-cli"
    checksum = next(c for c in calls if c.startswith("sha256sum"))
    assert "--check --strict -" in checksum and "194f1e1e4bd02f80b7e9633fc546084d8d4e19f3928a324d512ea53430102e1d" in checksum
    config = next(c for c in calls if c.startswith("config.sh"))
    assert config == ("config.sh --url https://github.com/example-org/kaito-gitops --labels kaito-gitops-prod-deploy "
                      "--name kaito-gitops-prod-deploy-runner --unattended token=REGISTRATION-TOKEN"), config
    assert not [c for c in calls if c.startswith("sudo") and "REGISTRATION-TOKEN" in c], "the token is on a command line"
    assert calls[-2:] == ["svc.sh install github-runner", "svc.sh start"]
    assert (tmp_path / "home" / "actions-runner" / ".runner").is_file()


def test_an_archive_that_does_not_match_the_pinned_checksum_is_not_installed(tmp_path: Path):
    result, calls = _setup(tmp_path, trust_checksum=False)
    assert result.returncode == 1 and "does not match its published SHA-256" in result.stderr, result.stderr
    assert not [c for c in calls if c.startswith(("config.sh", "svc.sh", "installdependencies.sh"))], calls
    assert not (tmp_path / "home" / "actions-runner").exists()


def test_a_tool_still_missing_after_installation_stops_the_setup_before_registration(tmp_path: Path):
    result, calls = _setup(tmp_path, trust_checksum=True, STUB_INSTALLS_KUBECTL="0")
    assert result.returncode == 1 and "kubectl is still missing" in result.stderr, result.stderr
    assert not [c for c in calls if c.startswith(("curl -fsSL -o", "config.sh"))], calls
