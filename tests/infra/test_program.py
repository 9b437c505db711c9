"""The Pulumi program under Pulumi's mocks, for each stack: one property per test, the URN in the message."""

from __future__ import annotations

import pytest

from infra.plan import Plan, build_plan

CLUSTER = "azure-native:containerservice:ManagedCluster"
POOL = "azure-native:containerservice:AgentPool"
REGISTRY = "azure-native:containerregistry:Registry"
ROLE = "azure-native:authorization:RoleAssignment"
NAMESPACE = "kubernetes:core/v1:Namespace"


@pytest.fixture(scope="module", params=["dev", "prod"])
def plan(request) -> Plan:
    return build_plan(request.param)


@pytest.fixture(scope="module")
def dev() -> Plan:
    return build_plan("dev")


@pytest.fixture(scope="module")
def prod() -> Plan:
    return build_plan("prod")


def one(plan: Plan, type_: str):
    found = plan.by_type(type_)
    assert len(found) == 1, f"expected one {type_}, got {[r.urn for r in found]}"
    return found[0]


def test_kaito_addon_is_enabled(plan):
    c = one(plan, CLUSTER)
    assert c.inputs["aiToolchainOperatorProfile"] == {"enabled": True}, c.urn


def test_oidc_issuer_is_enabled(plan):
    c = one(plan, CLUSTER)
    assert c.inputs["oidcIssuerProfile"] == {"enabled": True}, c.urn


def test_workload_identity_is_enabled(plan):
    c = one(plan, CLUSTER)
    assert c.inputs["securityProfile"]["workloadIdentity"] == {"enabled": True}, c.urn


def test_entra_id_with_azure_rbac_and_no_local_accounts(plan):
    c = one(plan, CLUSTER)
    assert c.inputs["aadProfile"]["managed"] and c.inputs["aadProfile"]["enableAzureRBAC"], c.urn
    assert c.inputs["disableLocalAccounts"] is True, c.urn


def test_network_policy_and_cni_overlay(plan):
    net = one(plan, CLUSTER).inputs["networkProfile"]
    assert (net["networkPlugin"], net["networkPluginMode"], net["networkPolicy"]) == ("azure", "overlay", "cilium")


def test_no_node_public_ips(plan):
    c = one(plan, CLUSTER)
    assert all(p["enableNodePublicIP"] is False for p in c.inputs["agentPoolProfiles"]), c.urn
    for pool in plan.by_type(POOL):
        assert pool.inputs["enableNodePublicIP"] is False, pool.urn


def test_upgrade_channels_and_maintenance_windows(plan):
    c = one(plan, CLUSTER)
    assert set(c.inputs["autoUpgradeProfile"]) == {"upgradeChannel", "nodeOSUpgradeChannel"}, c.urn
    windows = {m.inputs["configName"] for m in plan.by_type("azure-native:containerservice:MaintenanceConfiguration")}
    assert windows == {"aksManagedAutoUpgradeSchedule", "aksManagedNodeOSUpgradeSchedule"}


def test_system_pool_uses_an_ephemeral_os_disk_where_the_size_allows(plan):
    c = one(plan, CLUSTER)
    assert c.inputs["agentPoolProfiles"][0]["osDiskType"] == "Ephemeral", c.urn


def test_key_vault_secrets_provider(plan):
    c = one(plan, CLUSTER)
    assert c.inputs["addonProfiles"]["azureKeyvaultSecretsProvider"]["enabled"] is True, c.urn


def test_kubernetes_version_comes_from_config(plan):
    c = one(plan, CLUSTER)
    assert c.inputs["kubernetesVersion"] == plan.config.kubernetes_version, c.urn


def test_gpu_pool_is_a100_tainted_labelled_and_scales_from_zero(plan):
    pool = one(plan, POOL)
    i = pool.inputs
    assert i["vmSize"] == "Standard_NC24ads_A100_v4", pool.urn
    assert i["nodeTaints"] == ["sku=gpu:NoSchedule"], pool.urn
    assert i["nodeLabels"] == {"kaito-gitops.dev/pool": "gpua100", "accelerator": "nvidia"}, pool.urn
    assert i["enableAutoScaling"] is True and i["minCount"] == 0, pool.urn
    assert i["gpuProfile"] == {"driver": "Install"}, pool.urn


def test_pool_label_matches_what_bundled_jobs_select(dev):
    pool = one(dev, POOL)
    jobs = [o for o in dev.objects if o["kind"] == "Job"]
    assert jobs, "the dev example has a bundled job"
    for job in jobs:
        selector = job["spec"]["template"]["spec"]["nodeSelector"]
        assert selector.items() <= pool.inputs["nodeLabels"].items(), pool.urn


def test_spot_is_per_environment(dev, prod):
    assert one(dev, POOL).inputs["scaleSetPriority"] == "Spot", one(dev, POOL).urn
    assert one(prod, POOL).inputs["scaleSetPriority"] == "Regular", one(prod, POOL).urn


def test_registry_has_no_admin_user(plan):
    r = one(plan, REGISTRY)
    assert r.inputs["adminUserEnabled"] is False, r.urn


def test_anonymous_pull_is_off_where_the_sku_has_it(plan):
    r = one(plan, REGISTRY)
    assert r.inputs["anonymousPullEnabled"] is False, r.urn


def test_kubelet_gets_acrpull_on_the_registry_only(plan):
    role = one(plan, ROLE)
    assert role.inputs["roleDefinitionId"].endswith("/7f951dda-4ed3-4680-a7ca-43fe172d538d"), role.urn
    assert role.inputs["scope"] == f"{one(plan, REGISTRY).name}-id", role.urn
    assert role.inputs["principalId"].endswith("kubelet-object-id"), role.urn


def test_adapter_push_token_is_scoped_to_adapter_repositories(plan):
    scope = one(plan, "azure-native:containerregistry:ScopeMap")
    assert all(a.startswith("repositories/adapters/") for a in scope.inputs["actions"]), scope.urn
    assert one(plan, "azure-native:containerregistry:Token").inputs["status"] == "enabled"


def test_legacy_gpu_provisioner_is_off_by_default(plan):
    assert not plan.by_type("azure-native:managedidentity:UserAssignedIdentity")


def test_protect_in_prod_only(dev, prod):
    for type_ in (CLUSTER, REGISTRY):
        assert one(prod, type_).protect, one(prod, type_).urn
        assert not one(dev, type_).protect, one(dev, type_).urn


def test_private_api_server_in_prod(prod):
    c = one(prod, CLUSTER)
    assert c.inputs["apiServerAccessProfile"]["enablePrivateCluster"] is True, c.urn


def test_every_azure_child_is_parented_to_its_component(plan):
    components = {r.urn for r in plan.resources if r.type.startswith("kaito-gitops:infra:")}
    for r in plan.resources:
        if r.type.startswith(("azure-native:", "kubernetes:")) and r.type != "azure-native:resources:ResourceGroup":
            assert r.parent in components, r.urn


def test_a_namespace_per_team(plan):
    names = {r.inputs["metadata"]["name"] for r in plan.by_type("kubernetes:core/v1:Namespace")}
    assert names == set(plan.environment.defaults["teams"])


def _objects(plan: Plan):
    """The rendered objects as registered: one `kubernetes:<apiVersion>:<kind>` resource each."""
    return [r for r in plan.resources if r.type.startswith("kubernetes:") and r.type != NAMESPACE
            and not r.type.startswith("pulumi:")]


def test_every_rendered_object_is_sent_unchanged(plan):
    """pulumi-kubernetes' Python CustomResource would nest fields under `spec`; a Workspace has none."""
    sent = {(r.inputs["kind"], r.inputs["metadata"].get("namespace"), r.inputs["metadata"]["name"]): r
            for r in _objects(plan)}
    rendered = [o for o in plan.objects if o["kind"] != "Namespace"]
    assert len(sent) == len(rendered)
    for obj in rendered:
        meta = obj["metadata"]
        resource = sent[(obj["kind"], meta.get("namespace"), meta["name"])]
        assert resource.inputs == obj, resource.urn
        api = obj["apiVersion"] if "/" in obj["apiVersion"] else "core/v1"
        assert resource.type == f"kubernetes:{api}:{obj['kind']}", resource.urn


def test_workloads_wait_for_the_cluster_and_gpu_pools(plan):
    needed = {one(plan, CLUSTER).urn, *(p.urn for p in plan.by_type(POOL))}
    for resource in _objects(plan):
        assert needed <= set(resource.dependencies), resource.urn


def test_a_workspace_or_job_waits_for_the_configmap_it_names(plan):
    """KAITO's webhook refuses a tuning Workspace whose ConfigMap does not exist yet."""
    by_name = {r.inputs["metadata"]["name"]: r for r in _objects(plan) if r.inputs["kind"] == "ConfigMap"}
    users = [r for r in _objects(plan) if r.inputs["kind"] in ("Workspace", "Job") and
             (r.inputs.get("tuning") or r.inputs["kind"] == "Job")]
    assert users or plan.env == "prod"
    for resource in users:
        config = resource.inputs["tuning"]["config"] if resource.inputs["kind"] == "Workspace" else next(
            v["configMap"]["name"] for v in resource.inputs["spec"]["template"]["spec"]["volumes"] if "configMap" in v)
        assert by_name[config].urn in resource.dependencies, resource.urn


def test_fields_that_cannot_change_in_place_replace_the_object_deleting_it_first(plan):
    from infra.lifecycle import IMMUTABLE

    for resource in _objects(plan):
        paths = IMMUTABLE.get((resource.inputs["apiVersion"], resource.inputs["kind"]), ())
        assert resource.replace_on_changes == list(paths), resource.urn
        assert resource.delete_before_replace == bool(paths), resource.urn
    kinds = {r.inputs["kind"] for r in _objects(plan) if r.replace_on_changes}
    rendered = {r.inputs["kind"] for r in _objects(plan)}
    assert ("Workspace" in kinds) == ("Workspace" in rendered)  # InferenceSets (prod) have no such field we set


def test_a_retired_tuning_job_deploys_nothing(tmp_path):
    import shutil

    from infra.plan import load_stack_config, run_program
    from infra.specs import REPO_ROOT, load_environment

    shutil.copytree(REPO_ROOT / "workloads", tmp_path / "workloads")
    spec = tmp_path / "workloads/dev/ml-platform/phi3-dolly-qlora.yaml"
    spec.write_text(spec.read_text().replace("engine: kaito", "engine: kaito\n  retired: true"))
    plan = run_program(load_stack_config("dev"), load_environment("dev", tmp_path / "workloads"))
    names = {r.inputs["metadata"]["name"] for r in _objects(plan)}
    assert not any(n.startswith("phi3-dolly-qlora") for n in names)
    assert "phi3-dolly" in names and "phi3-dolly-bundled" in names
