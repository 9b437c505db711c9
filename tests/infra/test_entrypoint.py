"""infra/__main__.py, the program `pulumi up` runs, reads the stack's config through pulumi.Config."""

from __future__ import annotations

import json
import runpy

import pulumi

from infra.plan import _computed_outputs, stack_values
from infra.specs import REPO_ROOT
from infra.cli import main


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self):
        self.types: list[str] = []

    def new_resource(self, args):
        self.types.append(args.typ)
        return f"{args.name}-id", _computed_outputs(args)

    def call(self, args):
        return {"subscriptionId": "sub", "kubeconfigs": [{"name": "u", "value": "YXBpVmVyc2lvbjogdjEK"}]}


def test_pulumi_entry_point_builds_the_dev_stack_from_pulumi_config():
    mocks = _Mocks()
    pulumi.runtime.set_mocks(mocks, project="kaito-gitops", stack="dev", preview=True)
    pulumi.runtime.set_all_config({f"kaito-gitops:{k}": v if isinstance(v, str) else json.dumps(v)
                                   for k, v in stack_values("dev").items()})

    @pulumi.runtime.test
    def run():
        runpy.run_path(str(REPO_ROOT / "infra" / "__main__.py"), run_name="__main__")

    run()
    assert "azure-native:containerservice:ManagedCluster" in mocks.types
    assert mocks.types.count("kubernetes:kaito.sh/v1beta1:Workspace") == 2
    assert mocks.types.count("kubernetes:batch/v1:Job") == 1


def test_plan_prints_resources_pools_and_workloads(capsys):
    assert main(["plan", "--env", "dev"]) == 0
    out = capsys.readouterr().out
    assert "+ azure-native:containerservice:ManagedCluster kaito-dev-aks" in out
    assert "gpua100: Standard_NC24ads_A100_v4 (1x A100 80 GiB), 0-2 nodes, up to 2 GPUs, Spot" in out
    assert "TuningJob ml-platform/phi3-dolly-qlora" in out


def test_a_prod_stack_nobody_could_reach_stops_the_program_with_a_config_error(monkeypatch):
    """The placeholder 0.0.0.0/32 on a protected public stack: `pulumi preview` logs the key and the fix and
    exits 1 before registering a single resource."""
    mocks = _Mocks()
    values = {**stack_values("prod"), "apiServerAuthorizedIpRanges": ["0.0.0.0/32"]}
    values.pop("runnerSubnetCidr")
    pulumi.runtime.set_mocks(mocks, project="kaito-gitops", stack="prod", preview=True)
    pulumi.runtime.set_all_config({f"kaito-gitops:{k}": v if isinstance(v, str) else json.dumps(v)
                                   for k, v in values.items()})
    logged: list[str] = []
    monkeypatch.setattr(pulumi.log, "error", logged.append)
    try:
        runpy.run_path(str(REPO_ROOT / "infra" / "__main__.py"), run_name="__main__")
    except SystemExit as exit_:
        assert exit_.code == 1
    else:
        raise AssertionError("the program went on with an unreachable API server")
    assert len(logged) == 1 and logged[0].startswith("kaito-gitops:apiServerAuthorizedIpRanges: 0.0.0.0/32 admits nobody")
    assert mocks.types == []
