"""The plan shows which GPU nodes exist and which stay up, what keeps billing after a tuning job ends,
retired jobs and replacements."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from infra import pricing, review
from infra.plan import build_plan
from infra.specs import load_environment

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "valid"


def _edit(repo: Path, spec: str, old: str, new: str) -> None:
    path = repo / "workloads/dev/ml-platform" / spec
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))


def _plan(repo: Path) -> str:
    r = review.review_environment("dev", "HEAD", repo=repo, root=repo / "workloads")
    return review.comment([review.environment_section(r, region="eastus")], "HEAD", ["dev"])


@pytest.fixture(scope="module")
def dev_plan():
    return build_plan("dev")


def _regular(instance: str, region: str) -> float:
    return pricing.vm_price(instance, region).regular


def test_kaito_keeps_a_node_per_workspace_and_the_pool_scales_to_zero(dev_plan):
    rows = {n.owner: n for n in dev_plan.gpu_nodes}
    region = dev_plan.config.location
    assert set(rows) == {"pool gpua100", "Workspace ml-platform/phi3-dolly", "Workspace ml-platform/phi3-dolly-qlora"}
    pool = rows["pool gpua100"]
    assert (pool.nodes, pool.standing, pool.standing_per_hour()) == ("0-2", 0, 0.0)
    tuning = rows["Workspace ml-platform/phi3-dolly-qlora"]
    assert "until the spec is retired" in tuning.billing
    assert tuning.standing_per_hour() == pytest.approx(_regular("Standard_NC24ads_A100_v4", region))


def test_retiring_the_kaito_job_removes_its_node_from_the_plan(dev_plan):
    env = dev_plan.environment
    job = env.by_name("phi3-dolly-qlora")
    retired = dataclasses.replace(job, spec={**job.spec, "retired": True})
    others = [w for w in env.workloads if w is not job]
    nodes = pricing.gpu_nodes(dataclasses.replace(env, workloads=others + [retired]), dev_plan.pools, "eastus")
    assert [n.owner for n in nodes] == ["pool gpua100", "Workspace ml-platform/phi3-dolly"]


def test_byo_workspaces_hold_pool_nodes_instead_of_their_own():
    env = load_environment("dev", FIXTURES / "retired-job-and-byo-serving" / "workloads")
    pools = [dataclasses.make_dataclass("P", ["name", "vm_size", "min_nodes", "max_nodes", "spot"])(
        "gpua100", "Standard_NC24ads_A100_v4", 0, 2, True)]
    (row,) = pricing.gpu_nodes(env, pools, "eastus")
    assert row.owner == "pool gpua100" and row.standing == 1 and "held by KAITO Workspaces" in row.billing
    assert row.standing_per_hour() == pytest.approx(pricing.vm_price("Standard_NC24ads_A100_v4", "eastus").spot)


def test_the_comment_lists_gpu_nodes_and_the_kaito_version(dev_plan):
    text = "\n".join(review.plan_section(dev_plan, "HEAD"))
    assert "**GPU nodes** (KAITO 0.12.0 on the cluster" in text and "manifests for KAITO 0.12.0 (056b8280)" in text
    assert "| Workspace ml-platform/phi3-dolly-qlora | Standard_NC24ads_A100_v4" in text
    assert "`phi3-dolly-qlora` (engine kaito) keeps a Standard_NC24ads_A100_v4 node after its job ends" in text


def test_a_tuning_job_says_what_bills_after_it_ends(repo: Path):
    _edit(repo, "phi3-dolly-qlora.yaml", "epochs: 1", "epochs: 2")
    _edit(repo, "phi3-dolly-bundled.yaml", "epochs: 1", "epochs: 2")
    text = _plan(repo)
    kaito = next(line for line in text.splitlines() if line.startswith("| `phi3-dolly-qlora` |"))
    bundled = next(line for line in text.splitlines() if line.startswith("| `phi3-dolly-bundled` |"))
    assert kaito.endswith(f"| node stays up, ${_regular('Standard_NC24ads_A100_v4', 'eastus'):,.2f}/h, "
                          "until `retired: true` (the retire workflow's pull request) |")
    assert bundled.endswith("| pool scales to zero |")


def test_a_retired_job_is_listed_as_retired_and_its_objects_as_removed(repo: Path):
    _edit(repo, "phi3-dolly-qlora.yaml", "engine: kaito", "engine: kaito\n  retired: true")
    text = _plan(repo)
    assert "| 🏁 retired | `phi3-dolly-qlora` | TuningJob | ml-platform | finished: its objects are deleted" in text
    assert "**removed**: `Workspace ml-platform/phi3-dolly-qlora`" in text
    assert "keeps a Standard_NC24ads_A100_v4 node" not in text
    assert not [line for line in text.splitlines() if line.startswith("| `phi3-dolly-qlora` |")]  # not costed


def test_an_instance_type_change_is_shown_as_a_replacement(repo: Path):
    _edit(repo, "phi3-dolly.yaml", "preset: phi-3-mini-128k-instruct",
          "preset: phi-3-mini-128k-instruct\n  placement: {instanceType: Standard_NC48ads_A100_v4}")
    text = _plan(repo)
    assert ("| 🔁 replaced | `phi3-dolly` | InferenceDeployment | ml-platform | deleted and created again: "
            "`Workspace: resource.instanceType` cannot change in place |") in text
    assert "1 replaced" in text
    assert "**replaced**: `Workspace ml-platform/phi3-dolly (cannot change in place: resource.instanceType)`" in text


def test_kaito_gitops_diff_says_replaced(repo: Path, monkeypatch, capsys):
    from infra.cli import main

    monkeypatch.setattr("infra.specs.REPO_ROOT", repo)
    monkeypatch.setattr("infra.specs.WORKLOADS_DIR", repo / "workloads")
    _edit(repo, "phi3-dolly-qlora.yaml", "method: qlora", "method: lora")
    assert main(["diff", "--env", "dev", "--base", "HEAD"]) == 0
    out = capsys.readouterr().out
    assert "dev against HEAD: 1 added, 0 changed, 1 replaced, 1 removed" in out
    assert "replaced: Workspace ml-platform/phi3-dolly-qlora (cannot change in place: tuning.method)" in out


def test_on_byo_nodes_serving_counts_against_the_pools_gpus(dev_plan):
    env = dev_plan.environment
    byo = dataclasses.replace(env, defaults={**env.defaults, "kaito": {"version": "0.12.0", "nodeProvisioning": "byo"}},
                              workloads=[w for w in env.workloads if w.spec.get("engine") != "kaito"])
    serving = byo.by_name("phi3-dolly")
    wide = dataclasses.replace(serving, spec={**serving.spec, "replicas": 2})
    crowded = dataclasses.replace(dev_plan, environment=dataclasses.replace(
        byo, workloads=[w for w in byo.workloads if w is not serving] + [wide]))
    (warning,) = review.capacity_warnings(crowded)
    assert "bundled jobs and KAITO Workspaces on pool `gpua100` need 3 GPUs at once but it scales to 2" in warning
    assert review.capacity_warnings(dataclasses.replace(dev_plan, environment=byo)) == []


def test_the_plan_json_and_text_carry_nodes_version_and_replacement_options(dev_plan):
    import json

    from infra.plan import format_json, format_text

    data = json.loads(format_json(dev_plan))
    assert data["kaito"] == {"version": "0.12.0", "nodeProvisioning": "auto", "target": "0.12.0", "commit": "056b8280"}
    assert [n["owner"] for n in data["gpu_nodes"]][0] == "pool gpua100"
    workspace = next(r for r in data["resources"] if r["type"] == "kubernetes:kaito.sh/v1beta1:Workspace")
    assert "resource.instanceType" in workspace["replace_on_changes"] and workspace["delete_before_replace"]
    text = format_text(dev_plan)
    assert "GPU nodes (which exist and which stay up):" in text
    assert "  Workspace ml-platform/phi3-dolly-qlora: 1 x Standard_NC24ads_A100_v4, bills from deploy until" in text


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_only_jobs_whose_pods_end_request_gpus_from_the_pools(env_name: str):
    """The bundled engine holds no GPU after its Job ends: the only rendered pods that request a GPU are a
    Job's, with restartPolicy Never and no sidecar, so once they end nothing on the node requests the GPU, and
    the cluster autoscaler counts a finished pod (phase Succeeded or Failed with restartPolicy Never) as
    drainable before its local-storage or safe-to-evict checks (kubernetes/autoscaler cluster-autoscaler
    simulator/drainability/rules/rules.go, rules/terminal/rule.go). The pool can then scale to minCount 0."""
    from infra.render import render_environment

    objects = render_environment(load_environment(env_name))
    gpu_pods = []
    for obj in objects:
        template = obj.get("spec", {}).get("template", {}).get("spec")
        if template and any("nvidia.com/gpu" in str(c.get("resources", {}))
                            for c in template.get("initContainers", []) + template["containers"]):
            gpu_pods.append((obj["kind"], template))
    assert gpu_pods or env_name == "prod", "dev's bundled example must be among them"
    for kind, pod in gpu_pods:
        assert kind == "Job" and pod["restartPolicy"] == "Never"
        assert not [c for c in pod.get("initContainers", []) if c.get("restartPolicy") == "Always"], "a sidecar"
    pools = build_plan(env_name).config.gpu_pools
    assert [p.min_count for p in pools] == [0] * len(pools)
