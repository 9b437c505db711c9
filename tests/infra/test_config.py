"""Stack config: each bad value is an error naming the key, the rule and the allowed values."""

from __future__ import annotations

import pytest
import yaml

from infra.config import KEYS, ConfigError, from_values
from infra.plan import stack_values, stacks
from infra.specs import REPO_ROOT

BASE = {"location": "westus3", "kubernetesVersion": "1.36", "registryName": "kaitogitopsdev",
        "gpuPools": [{"name": "gpua100", "vmSize": "Standard_NC24ads_A100_v4", "minCount": 0, "maxCount": 1}]}


def test_stack_files_are_valid():
    assert stacks() == ["dev", "prod"]
    for stack in stacks():
        from_values(stack, stack_values(stack))


def test_every_key_is_documented_in_pulumi_yaml():
    documented = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(documented) == {f"kaito-gitops:{k}" for k in KEYS}
    assert all(entry.get("description") for entry in documented.values())


@pytest.mark.parametrize("key,value,message", [
    ("location", "moon-1", "kaito-gitops:location: 'moon-1' is not allowed; allowed: australiaeast"),
    ("kubernetesVersion", "latest", "kaito-gitops:kubernetesVersion: 'latest' must look like 1.36"),
    ("registryName", "my-acr", "kaito-gitops:registryName: 'my-acr' must be 5-50 letters and digits"),
    ("systemVmSize", "Standard_NC24ads_A100_v4", "kaito-gitops:systemVmSize: 'Standard_NC24ads_A100_v4' is not allowed"),
    ("protect", "yes", "kaito-gitops:protect: 'yes' must be true or false"),
    ("systemNodeCount", "two", "kaito-gitops:systemNodeCount: 'two' must be a whole number"),
    ("maintenanceDurationHours", 2, "must be 4-24"),
    ("gpuPools", [{"name": "gpu", "vmSize": "Standard_X", "minCount": 0, "maxCount": 1}],
     "kaito-gitops:gpuPools[0].vmSize: 'Standard_X' is not a known GPU size"),
    ("gpuPools", [{"name": "gpu", "minCount": 3, "maxCount": 1}], "must satisfy 0 <= minCount <= maxCount"),
    ("gpuPools", [{"name": "GPU_pool"}], "kaito-gitops:gpuPools[0].name: 'GPU_pool' must be 1-12 lower-case"),
    ("gpuPools", [{"name": "gpu", "zones": [1]}], "kaito-gitops:gpuPools[0].zones: unknown key"),
    ("colour", "blue", "kaito-gitops:colour: unknown key; known keys:"),
    ("apiServerSubnetCidr", "10.225.0.0/29", "smaller than AKS's minimum /28"),
    ("apiServerSubnetCidr", "10.100.0.0/28", "must lie inside vnetCidr"),
    ("apiServerSubnetCidr", "10.224.0.0/28", "overlaps nodeSubnetCidr"),
    ("apiServerSubnetCidr", "10.225.0.1/28", "must be a network CIDR"),
    ("apiServerAuthorizedIpRanges", ["203.0.113.0/33"], "not network CIDRs"),
    ("adminGroupObjectIds", ["platform-admins"], "must be a list of Entra ID object ids"),
    ("previewPrincipalId", "ci-preview", "must be an object id"),
    ("systemOsDiskSizeGB", 8, "must be 30-2048 GiB"),
    ("gpuPools", [{"name": "gpu", "osDiskSizeGB": 4096}], "kaito-gitops:gpuPools[0].osDiskSizeGB: 4096 must be 30-2048"),
    ("runnerSubnetCidr", "10.226.0.1/24", "kaito-gitops:runnerSubnetCidr: '10.226.0.1/24' must be a network CIDR"),
    ("runnerSubnetCidr", "10.226.0.0/30", "kaito-gitops:runnerSubnetCidr: 10.226.0.0/30 is smaller than Azure's smallest"),
    ("runnerSubnetCidr", "192.168.0.0/24", "must lie inside vnetCidr"),
    ("runnerSubnetCidr", "10.225.0.0/24", "overlaps apiServerSubnetCidr 10.225.0.0/28"),
    ("runnerSubnetCidr", "10.224.8.0/24", "overlaps nodeSubnetCidr 10.224.0.0/16"),
])
def test_bad_values_name_key_and_rule(key, value, message):
    with pytest.raises(ConfigError) as caught:
        from_values("dev", {**BASE, key: value})
    assert any(message in p for p in caught.value.problems), caught.value.problems


def test_missing_required_keys_are_all_reported():
    with pytest.raises(ConfigError) as caught:
        from_values("dev", {})
    assert sorted(p.split(":")[1] for p in caught.value.problems) == [
        "gpuPools", "kubernetesVersion", "location", "registryName"]


def test_plan_command_reports_config_errors_without_traceback(tmp_path, monkeypatch, capsys):
    from infra.cli import main

    monkeypatch.setattr("infra.specs.REPO_ROOT", tmp_path)
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  kaito-gitops:location: moon-1\n")
    (tmp_path / "workloads").symlink_to(REPO_ROOT / "workloads")
    monkeypatch.setattr("infra.plan.build_plan.__defaults__", (tmp_path, None))
    assert main(["plan", "--env", "dev"]) == 1
    out = capsys.readouterr().out
    assert "Pulumi.dev.yaml: kaito-gitops:location: 'moon-1' is not allowed" in out


def test_authorized_ranges_cannot_be_combined_with_a_private_cluster():
    with pytest.raises(ConfigError) as caught:
        from_values("dev", {**BASE, "privateCluster": True, "apiServerAuthorizedIpRanges": ["203.0.113.0/24"]})
    assert any("cannot combine authorized IP ranges with a private cluster" in p for p in caught.value.problems)


def test_a_protected_public_api_server_must_say_who_may_reach_it():
    with pytest.raises(ConfigError) as caught:
        from_values("prod", {**BASE, "protect": True, "privateCluster": False})
    assert any("kaito-gitops:apiServerAuthorizedIpRanges: a protected stack" in p and "runnerSubnetCidr" in p
               for p in caught.value.problems)
    assert from_values("prod", {**BASE, "protect": True, "runnerSubnetCidr": "10.226.0.0/24"})
    assert from_values("prod", {**BASE, "protect": True, "apiServerAuthorizedIpRanges": ["198.51.100.0/28"]})


def test_the_cluster_only_placeholder_is_refused_where_nobody_could_deploy():
    """AKS reads 0.0.0.0/32 as "only the cluster's own outbound IP" (api-server-authorized-ip-ranges.md): a
    protected stack with it could never be deployed again by its pipeline, so preview stops on it."""
    with pytest.raises(ConfigError) as caught:
        from_values("prod", {**BASE, "protect": True, "apiServerAuthorizedIpRanges": ["0.0.0.0/32"]})
    assert caught.value.problems == [
        "kaito-gitops:apiServerAuthorizedIpRanges: 0.0.0.0/32 admits nobody outside the cluster, so no deploy job "
        "could reach this protected stack's API server; set runnerSubnetCidr (the deploy runner's subnet, whose NAT "
        "gateway IP the program admits) or list the CIDRs that deploy (docs/infrastructure.md, \"Reaching the API "
        "server\")"]
    with pytest.raises(ConfigError) as caught:
        from_values("dev", {**BASE, "runnerSubnetCidr": "10.226.0.0/24", "apiServerAuthorizedIpRanges": ["0.0.0.0/32"]})
    assert "cannot be combined with other ranges or runnerSubnetCidr" in caught.value.problems[0]
    assert from_values("dev", {**BASE, "apiServerAuthorizedIpRanges": ["0.0.0.0/32"]})  # unprotected: allowed


def test_a_protected_private_api_server_needs_no_ranges():
    assert from_values("prod", {**BASE, "protect": True, "privateCluster": True}).private_cluster

