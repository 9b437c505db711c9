"""scripts/bootstrap.sh: valid bash, shellcheck-clean, refuses bad arguments, reads the Key Vault and key
from the stack file's `secretsprovider`, and creates nothing on a second run. Azure is not reachable here:
the flow runs against a stand-in `az` that records each call and answers "missing" on the first run and
"present" on the second. What the real az CLI does with each call is not tested here."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.specs import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "bootstrap.sh"

# Answers like az's for the queries the script makes; $STUB_EXISTS=1 makes every `show`/`list` find something.
STUB_AZ = r"""#!/usr/bin/env bash
echo "az $*" >> "$STUB_LOG"
exists=${STUB_EXISTS:-0}
case "$*" in
  "account show --query id -o tsv") echo 00000000-0000-0000-0000-000000000001 ;;
  "account show --query tenantId -o tsv") echo 00000000-0000-0000-0000-000000000002 ;;
  "ad signed-in-user show"*) echo me-object-id ;;
  "storage account show"*"--query id"*) echo /subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/acct ;;
  "storage account show"*|"keyvault key show"*|"identity federated-credential show"*) [[ $exists == 1 ]] || exit 3 ;;
  "storage container-rm exists"*) [[ $exists == 1 ]] && echo true || echo false ;;
  "keyvault show"*"--query id"*) echo /subscriptions/s/resourceGroups/g/providers/Microsoft.KeyVault/vaults/v ;;
  "keyvault show"*) [[ $exists == 1 ]] || exit 3 ;;
  "role assignment list"*) [[ $exists == 1 ]] && echo assignment-id ;;
  "identity create --name "*) echo "principal-of-$4" ;;
  "identity show"*) echo client-id ;;
  "group show --name kaito-dev-rg1234 --query id -o tsv") echo /subscriptions/s/resourceGroups/kaito-dev-rg1234 ;;
esac
exit 0
"""


@pytest.mark.parametrize("script", sorted((REPO_ROOT / "scripts").glob("*.sh")), ids=lambda p: p.name)
def test_every_script_is_valid_bash_and_shellcheck_clean(script: Path):
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert shutil.which("shellcheck"), "shellcheck is missing: `make test` installs it (Makefile, system-packages)"
    result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("args, message", [
    ([], "usage: scripts/bootstrap.sh <env>"),
    (["dev", "--repo", "not-a-repo", "--state-account", "acct123"], "--repo must be <owner>/<name>"),
    (["dev", "--repo", "o/r", "--state-account", "Bad_Name"], "--state-account"),
    (["staging", "--repo", "o/r", "--state-account", "acct123"], "no stack file"),
])
def test_bad_arguments_exit_2_with_a_message(args, message):
    result = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def _run(tmp_path: Path, exists: bool, expect_pulumi: bool = False, *extra: str) -> list[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "az").write_text(STUB_AZ)
    (bin_dir / "az").chmod(0o755)
    log = tmp_path / f"az-{int(exists)}.log"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_LOG": str(log), "STUB_EXISTS": str(int(exists)),
           "HOME": str(tmp_path)}
    result = subprocess.run(["bash", str(SCRIPT), "dev", "--repo", "example-org/kaito-gitops",
                             "--state-account", "kgopsstate1", *extra], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    if not expect_pulumi:
        assert "no pulumi CLI" in result.stdout and "--secrets-provider 'azurekeyvault://kaitogitops-dev" in result.stdout
    return log.read_text().splitlines()


def test_first_run_creates_what_the_stack_file_names(tmp_path: Path):
    calls = _run(tmp_path, exists=False)
    joined = "\n".join(calls)
    assert "az keyvault create --name kaitogitops-dev " in joined
    assert "az keyvault key create --vault-name kaitogitops-dev --name pulumi --kty RSA" in joined
    assert "az storage container-rm create --storage-account kgopsstate1 --name pulumi-dev" in joined
    for subject in ("repo:example-org/kaito-gitops:environment:dev", "repo:example-org/kaito-gitops:pull_request",
                    "repo:example-org/kaito-gitops:ref:refs/heads/main"):
        assert f"--subject {subject} " in joined, subject
    assert "--allow-shared-key-access false" in joined, "state is reachable with Entra ID only"
    roles = {(c.split("--assignee-object-id ")[1].split()[0], c.split("--role ")[1].split(" --scope")[0])
             for c in calls if c.startswith("az role assignment create")}
    preview, deploy = "principal-of-id-kaito-gitops-preview", "principal-of-id-kaito-gitops-dev-deploy"
    assert (preview, "Storage Blob Data Reader") in roles and (deploy, "Storage Blob Data Contributor") in roles
    assert not {r for p, r in roles if p == preview and ("Contributor" in r or "Administrator" in r)}, roles


def test_a_second_run_creates_nothing_new(tmp_path: Path):
    calls = _run(tmp_path, exists=True)
    # `az group create` and `az identity create` are PUTs of the same resource: no-ops when it exists.
    creating = [c for c in calls if " create " in c and not c.startswith(("az group create", "az identity create"))]
    assert not creating, creating
    assert not [c for c in calls if c.startswith("az role assignment create")]


# What `pulumi` answers after the stack's first `up`: its resource group is an output.
STUB_PULUMI = r"""#!/usr/bin/env bash
echo "pulumi $*" >> "$STUB_LOG"
case "$*" in
  "stack output resource_group_name"*) echo kaito-dev-rg1234 ;;
esac
exit 0
"""


def test_after_the_first_up_the_deploy_identity_is_moved_to_the_stacks_resource_group(tmp_path: Path):
    """Everything the program creates lives in its resource group; only creating that group (and registering
    resource providers) needs the subscription (AKS aks-service-permissions.md: the creating identity's
    permissions are on the subnets, identities and cluster it creates)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(STUB_PULUMI)
    (bin_dir / "pulumi").chmod(0o755)
    wide = _run(tmp_path, True, True)
    assert not [c for c in wide if c.startswith("az role assignment delete")], "only --narrow narrows"
    calls = _run(tmp_path, True, True, "--narrow")
    group = "/subscriptions/s/resourceGroups/kaito-dev-rg1234"
    deploy = "principal-of-id-kaito-gitops-dev-deploy"
    for role in ("Contributor", "Role Based Access Control Administrator"):
        assert f"az role assignment list --assignee {deploy} --role {role} --scope {group} --query [0].id -o tsv" in calls
        assert (f"az role assignment delete --assignee {deploy} --role {role} "
                f"--scope /subscriptions/00000000-0000-0000-0000-000000000001") in calls
    assert not [c for c in calls if c.startswith("az role assignment create") and "00000000-0000-0000-0000-000000000001" in c
                and deploy in c]


def test_narrowing_before_the_first_up_is_refused(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text("#!/usr/bin/env bash\n[[ $1 == stack && $2 == output ]] && exit 255\nexit 0\n")
    (bin_dir / "pulumi").chmod(0o755)
    (bin_dir / "az").write_text(STUB_AZ)
    (bin_dir / "az").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_LOG": str(tmp_path / "az.log"), "HOME": str(tmp_path)}
    result = subprocess.run(["bash", str(SCRIPT), "dev", "--repo", "o/r", "--state-account", "kgopsstate1", "--narrow"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 1 and "no resource_group_name output yet" in result.stderr, result.stderr
    assert "role assignment delete" not in (tmp_path / "az.log").read_text()
