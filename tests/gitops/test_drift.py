"""The drift check's node-pool report: pools on the cluster (`az aks nodepool list -o json`) that the
program does not declare, with the Workspace KAITO made them for. The labels are the ones Azure's
gpu-provisioner puts on the agent pools it creates (Azure/gpu-provisioner pkg/providers/instance/instance.go:
karpenter.sh/nodepool=kaito plus the NodeClaim's labels, which KAITO sets to kaito.sh/workspace and
kaito.sh/workspacenamespace: kaito pkg/utils/nodeclaim/nodeclaim.go)."""

from __future__ import annotations

import json
from pathlib import Path

from infra import drift

# Trimmed `az aks nodepool list -o json` entries (the command returns more fields; these are the ones read).
CLUSTER = [
    {"name": "system", "vmSize": "Standard_D4ds_v5", "count": 1, "mode": "System", "nodeLabels": None},
    {"name": "gpua100", "vmSize": "Standard_NC24ads_A100_v4", "count": 0, "mode": "User", "nodeLabels": {
        "kaito-gitops.dev/pool": "gpua100", "accelerator": "nvidia"}},
    {"name": "ws4f9c2a1b", "vmSize": "Standard_NC24ads_A100_v4", "count": 1, "mode": "User", "nodeLabels": {
        "karpenter.sh/nodepool": "kaito", "kaito.sh/workspace": "phi3-dolly",
        "kaito.sh/workspacenamespace": "ml-platform", "kaito.sh/machine-type": "gpu"}},
    {"name": "adhoc", "vmSize": "Standard_D2s_v5", "count": 2, "mode": "User"},
]


def test_the_dev_stack_declares_its_system_and_gpu_pools():
    assert drift.declared_pools("dev") == {"system", "gpua100"}


def test_kaito_pools_and_hand_made_pools_are_reported_declared_ones_are_not(tmp_path: Path, capsys):
    pools_file = tmp_path / "pools.json"
    pools_file.write_text(json.dumps(CLUSTER))
    assert drift.main(["node-pools", "--env", "dev", "--agent-pools", str(pools_file)]) == 1
    out = capsys.readouterr().out
    assert "2 agent pool(s) not declared" in out
    assert "| `ws4f9c2a1b` | Standard_NC24ads_A100_v4 | 1 | KAITO, for Workspace `ml-platform/phi3-dolly` |" in out
    assert "| `adhoc` | Standard_D2s_v5 | 2 | not this program, not KAITO |" in out
    assert "`gpua100`" not in out and "`system`" not in out


def test_no_drift_exits_0(tmp_path: Path, capsys):
    pools_file = tmp_path / "pools.json"
    pools_file.write_text(json.dumps(CLUSTER[:2]))
    assert drift.main(["node-pools", "--env", "dev", "--agent-pools", str(pools_file)]) == 0
    assert "every AKS agent pool is declared" in capsys.readouterr().out


def test_unusable_input_exits_2_naming_the_file(tmp_path: Path, capsys):
    bad = tmp_path / "pools.json"
    bad.write_text('{"name": "system"}')
    assert drift.main(["node-pools", "--env", "dev", "--agent-pools", str(bad)]) == 2
    assert f"{bad}: $: expected a list of agent pools" in capsys.readouterr().err
    bad.write_text("[\n  {oops}\n]")
    assert drift.main(["node-pools", "--env", "dev", "--agent-pools", str(bad)]) == 2
    assert f"{bad}:2: not JSON" in capsys.readouterr().err
    assert drift.main(["node-pools", "--env", "dev", "--agent-pools", str(tmp_path / "none.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert drift.main(["node-pools", "--env", "staging", "--agent-pools", str(bad)]) == 2
    assert "no stack 'staging'" in capsys.readouterr().err
