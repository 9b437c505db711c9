"""The Pulumi program under Pulumi's mocks, for each stack: one property per test, the URN in the message."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
import yaml

from infra import catalog
from infra.components.access import CLUSTER_USER_ROLE, RBAC_CLUSTER_ADMIN_ROLE, RBAC_READER_ROLE
from infra.components.identity import NETWORK_CONTRIBUTOR_ROLE
from infra.plan import FAKE_SUBSCRIPTION, Plan, build_plan, load_stack_config, run_program
from infra.specs import load_environment

CLUSTER = "azure-native:containerservice:ManagedCluster"
POOL = "azure-native:containerservice:AgentPool"
REGISTRY = "azure-native:containerregistry:Registry"
ROLE = "azure-native:authorization:RoleAssignment"
NAMESPACE = "kubernetes:core/v1:Namespace"
GROUP = "kubernetes:yaml/v2:ConfigGroup"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
SUBNET = "azure-native:network:Subnet"
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
PROVIDER = "pulumi:providers:kubernetes"
SPOT_TAINT = "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"  # AKS spot-node-pool.md
# KAITO's controller and webhook tolerate nothing (charts/kaito/workspace/values.yaml `tolerations: []`,
# kaito-project/kaito 056b8280).
KAITO_CONTROLLER_TOLERATIONS: list[dict] = []
KAITO_REPO = Path("/work/.mirror/kaito-project+kaito/repo")  # KAITO's git history, where present
KAITO_COMMIT = "056b8280b1a8debf644bc6f4399e913a1f9c7e70"


@pytest.fixture(scope="module", params=["dev", "prod"])
def plan(request) -> Plan:
    return build_plan(request.param)


@pytest.fixture(scope="module")
def dev() -> Plan:
    return build_plan("dev")


@pytest.fixture(scope="module")
def prod() -> Plan:
    return build_plan("prod")


def one(plan: Plan, type_: str, name_part: str = ""):
    found = [r for r in plan.by_type(type_) if name_part in r.name]
    assert len(found) == 1, f"expected one {type_} named *{name_part}*, got {[r.urn for r in found]}"
    return found[0]


def variant(env: str, **changes) -> Plan:
    """The stack's program with some config values changed."""
    cfg = dataclasses.replace(load_stack_config(env), **changes)
    return run_program(cfg, load_environment(env))


def plain(value):
    """A secret input arrives wrapped with its signature key."""
    return value["value"] if isinstance(value, dict) and "value" in value else value


def tolerates(tolerations: list[dict], taint: str) -> bool:
    key_value, effect = taint.rsplit(":", 1)
    key, _, value = key_value.partition("=")
    return any(t.get("key") == key and t.get("effect", effect) == effect
               and (t.get("operator") == "Exists" or t.get("value") == value) for t in tolerations)


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


def _disks(plan: Plan):
    system = one(plan, CLUSTER).inputs["agentPoolProfiles"][0]
    yield one(plan, CLUSTER).urn, system["vmSize"], system
    for pool in plan.by_type(POOL):
        yield pool.urn, pool.inputs["vmSize"], pool.inputs


def test_every_pool_sets_its_os_disk_size(plan):
    for urn, _, pool in _disks(plan):
        assert pool.get("osDiskSizeGB"), urn


def test_ephemeral_os_disks_fit_the_vms_cache_or_temp_disk(plan):
    """AKS places an ephemeral OS disk on the cache if the size has one, else on the temp disk, and rejects
    one that does not fit (AKS concepts-storage.md)."""
    for urn, vm_size, pool in _disks(plan):
        if pool["osDiskType"] == "Ephemeral":
            sku = catalog.sku(vm_size)
            local = sku.cache_disk_gib or sku.temp_disk_gib
            assert local and pool["osDiskSizeGB"] <= local, f"{urn}: {pool['osDiskSizeGB']} GiB > {local} GiB"


def test_a100_pool_gets_a_managed_os_disk_its_64_gib_temp_disk_cannot_hold(plan):
    pool = one(plan, POOL)
    assert (pool.inputs["osDiskType"], pool.inputs["osDiskSizeGB"]) == ("Managed", 512), pool.urn


def test_an_os_disk_that_fits_the_a100_temp_disk_is_ephemeral():
    pools = tuple(dataclasses.replace(p, os_disk_size_gb=64) for p in load_stack_config("dev").gpu_pools)
    pool = one(variant("dev", gpu_pools=pools), POOL)
    assert pool.inputs["osDiskType"] == "Ephemeral", pool.urn


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
    role = one(plan, ROLE, "acrpull")
    assert role.inputs["roleDefinitionId"].endswith("/7f951dda-4ed3-4680-a7ca-43fe172d538d"), role.urn
    assert role.inputs["scope"] == f"{one(plan, REGISTRY).name}-id", role.urn
    assert role.inputs["principalId"].endswith("kubelet-object-id"), role.urn


def test_adapter_push_token_is_scoped_to_adapter_repositories(plan):
    scope = one(plan, "azure-native:containerregistry:ScopeMap", "adapter-push")
    assert all(a.startswith("repositories/adapters/") for a in scope.inputs["actions"]), scope.urn
    assert one(plan, "azure-native:containerregistry:Token", "adapter-push").inputs["status"] == "enabled"


def test_pull_token_only_reads_adapter_and_data_repositories(plan):
    """The read secret KAITO's puller uses (names.PULL_SECRET) comes from a token that cannot write."""
    scope = one(plan, "azure-native:containerregistry:ScopeMap", "adapter-pull")
    assert sorted(scope.inputs["actions"]) == [
        "repositories/adapters/*/content/read", "repositories/adapters/*/metadata/read",
        "repositories/data/*/content/read", "repositories/data/*/metadata/read"], scope.urn
    token = one(plan, "azure-native:containerregistry:Token", "adapter-pull")
    assert token.inputs["tokenName"] == "adapter-pull" and token.inputs["status"] == "enabled", token.urn


def test_legacy_gpu_provisioner_is_off_by_default(plan):
    assert not plan.by_type("kaito-gitops:infra:GpuProvisionerIdentity")


def test_protect_in_prod_only(dev, prod):
    for type_ in (CLUSTER, REGISTRY):
        assert one(prod, type_).protect, one(prod, type_).urn
        assert not one(dev, type_).protect, one(dev, type_).urn


def test_api_server_is_projected_into_its_delegated_subnet(plan):
    c, subnet = one(plan, CLUSTER), one(plan, SUBNET, "apiserver")
    access = c.inputs["apiServerAccessProfile"]
    assert access["enableVnetIntegration"] is True and access["subnetId"] == f"{subnet.name}-id", c.urn


def test_api_server_subnet_is_delegated_to_aks(plan):
    subnet = one(plan, SUBNET, "apiserver")
    assert [d["serviceName"] for d in subnet.inputs["delegations"]] == [
        "Microsoft.ContainerService/managedClusters"], subnet.urn


RUNNER_EGRESS = "203.0.113.10/32"  # the address infra/plan.py's mocks give a public IP


def test_authorized_ip_ranges_are_the_configs_plus_the_deploy_runners_egress(plan):
    c = one(plan, CLUSTER)
    runner = [RUNNER_EGRESS] if plan.config.runner_subnet_cidr else []
    assert c.inputs["apiServerAccessProfile"]["authorizedIPRanges"] == [
        *plan.config.api_server_authorized_ip_ranges, *runner], c.urn


def test_prod_api_server_admits_its_deploy_runner_and_no_one_else(prod):
    """AKS admits the listed ranges plus the cluster's own outbound IP (api-server-authorized-ip-ranges.md)."""
    c = one(prod, CLUSTER)
    assert c.inputs["apiServerAccessProfile"]["authorizedIPRanges"] == [RUNNER_EGRESS], c.urn


def test_the_runner_subnet_leaves_through_a_nat_gateway_on_the_admitted_ip(prod):
    """A subnet's outbound connections use its NAT gateway's public IPs (Azure nat-overview.md), so the one
    static IP the API server admits is the runner's egress, and the runner reaches the API server from it."""
    ip = one(prod, "azure-native:network:PublicIPAddress", "runner-egress")
    assert ip.inputs["sku"] == {"name": "Standard"} and ip.inputs["publicIPAllocationMethod"] == "Static", ip.urn
    nat = one(prod, "azure-native:network:NatGateway", "runner-nat")
    assert nat.inputs["publicIpAddresses"] == [{"id": f"{ip.name}-id"}], nat.urn
    subnet = one(prod, SUBNET, "runner")
    assert subnet.inputs["natGateway"] == {"id": f"{nat.name}-id"}, subnet.urn
    assert subnet.inputs["addressPrefix"] == prod.config.runner_subnet_cidr, subnet.urn


def test_without_a_runner_subnet_there_is_no_nat_gateway(dev):
    assert not dev.config.runner_subnet_cidr
    assert not dev.by_type("azure-native:network:NatGateway") and not dev.by_type("azure-native:network:PublicIPAddress")


def test_a_private_cluster_gets_no_ranges_even_with_a_runner_subnet():
    """AKS refuses authorized ranges on a private cluster; a runner in the VNet reaches it privately."""
    c = one(variant("prod", private_cluster=True), CLUSTER)
    assert c.inputs["apiServerAccessProfile"]["authorizedIPRanges"] == [], c.urn
    assert c.inputs["apiServerAccessProfile"]["enablePrivateCluster"] is True, c.urn


def test_kubernetes_providers_use_the_kubelogin_exec_kubeconfig(plan):
    """Local accounts are off: only an Entra ID token works, and the exec kubeconfig fetches one via kubelogin."""
    for provider in plan.by_type(PROVIDER):
        kubeconfig = yaml.safe_load(plain(provider.inputs["kubeconfig"]))
        assert [u["user"]["exec"]["command"] for u in kubeconfig["users"]] == ["kubelogin"], provider.urn


def test_cluster_uses_the_user_assigned_control_plane_identity(plan):
    c, identity = one(plan, CLUSTER), one(plan, IDENTITY, "control-plane")
    assert c.inputs["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [f"{identity.name}-id"]}, c.urn


def test_control_plane_identity_is_network_contributor_on_each_subnet_the_cluster_uses(plan):
    """The node and API server subnets; the deploy runner's subnet is none of AKS's business."""
    identity = one(plan, IDENTITY, "control-plane")
    scopes = {r.inputs["scope"] for r in plan.by_type(ROLE)
              if r.inputs["roleDefinitionId"].endswith(NETWORK_CONTRIBUTOR_ROLE)
              and r.inputs["principalId"] == f"{identity.name}-principal-id"}
    assert scopes == {f"{s.name}-id" for s in plan.by_type(SUBNET) if not s.name.endswith("-runner")}, identity.urn


def test_cluster_is_created_after_the_network_contributor_assignments(plan):
    c = one(plan, CLUSTER)
    needed = {r.urn for r in plan.by_type(ROLE) if r.inputs["roleDefinitionId"].endswith(NETWORK_CONTRIBUTOR_ROLE)}
    assert needed and needed <= set(c.dependencies), c.urn


def test_deployer_is_rbac_cluster_admin_on_the_cluster(plan):
    """RBAC Writer cannot create namespaces or custom resources; Cluster Admin can (Azure built-in roles)."""
    role = one(plan, ROLE, "deployer")
    assert role.inputs["roleDefinitionId"].endswith(RBAC_CLUSTER_ADMIN_ROLE), role.urn
    assert role.inputs["scope"] == f"{one(plan, CLUSTER).name}-id", role.urn
    assert role.inputs["principalId"] == FAKE_SUBSCRIPTION, role.urn  # the client config's objectId


def test_workloads_wait_for_the_deployers_role(plan):
    role = one(plan, ROLE, "deployer")
    for group in plan.by_type(GROUP):
        assert role.urn in group.dependencies, group.urn


def test_preview_identity_gets_cluster_user_and_rbac_reader_only():
    principal = "11111111-2222-3333-4444-555555555555"
    plan = variant("dev", preview_principal_id=principal)
    roles = {r.inputs["roleDefinitionId"].rsplit("/", 1)[1]: r for r in plan.by_type(ROLE)
             if r.inputs["principalId"] == principal}
    assert set(roles) == {CLUSTER_USER_ROLE, RBAC_READER_ROLE}, [r.urn for r in roles.values()]
    for role in roles.values():
        assert role.inputs["scope"] == f"{one(plan, CLUSTER).name}-id", role.urn


def test_no_preview_roles_without_a_preview_identity(dev):
    assert not [r.urn for r in dev.by_type(ROLE) if "preview" in r.name]


def test_admin_groups_are_optional(dev):
    c = one(dev, CLUSTER)
    assert c.inputs["aadProfile"]["adminGroupObjectIDs"] == list(dev.config.admin_group_object_ids), c.urn


def test_cluster_ignores_version_drift_under_an_upgrade_channel(plan):
    c = one(plan, CLUSTER)
    assert {"kubernetesVersion", "agentPoolProfiles[*].orchestratorVersion"} <= set(c.ignore_changes), c.urn


def test_gpu_pool_ignores_version_drift_under_an_upgrade_channel(plan):
    pool = one(plan, POOL)
    assert "orchestratorVersion" in pool.ignore_changes, pool.urn


@pytest.mark.parametrize("channel", ["none", "node-image"])
def test_without_a_version_moving_channel_the_version_is_enforced(channel):
    plan = variant("dev", upgrade_channel=channel)
    assert "kubernetesVersion" not in one(plan, CLUSTER).ignore_changes, one(plan, CLUSTER).urn
    assert "orchestratorVersion" not in one(plan, POOL).ignore_changes, one(plan, POOL).urn


def test_device_plugin_runs_on_every_gpu_pool(plan):
    ds = one(plan, DAEMON_SET, "nvidia-device-plugin")
    selector = ds.inputs["spec"]["template"]["spec"]["nodeSelector"]
    for pool in plan.by_type(POOL):
        assert selector.items() <= pool.inputs["nodeLabels"].items(), f"{ds.urn} misses {pool.urn}"


def test_device_plugin_tolerates_every_gpu_pools_taints(plan):
    tolerations = one(plan, DAEMON_SET, "nvidia-device-plugin").inputs["spec"]["template"]["spec"]["tolerations"]
    for pool in plan.by_type(POOL):
        taints = pool.inputs["nodeTaints"] + ([SPOT_TAINT] if pool.inputs["scaleSetPriority"] == "Spot" else [])
        for taint in taints:
            assert tolerates(tolerations, taint), f"{pool.urn}: {taint}"


def test_device_plugin_tolerates_spot_nodes_where_the_pool_is_on_spot(dev):
    tolerations = one(dev, DAEMON_SET, "nvidia-device-plugin").inputs["spec"]["template"]["spec"]["tolerations"]
    assert one(dev, POOL).inputs["scaleSetPriority"] == "Spot"
    assert tolerates(tolerations, SPOT_TAINT), one(dev, DAEMON_SET).urn


def test_workloads_wait_for_the_device_plugin(plan):
    ds = one(plan, DAEMON_SET, "nvidia-device-plugin")
    for group in plan.by_type(GROUP):
        assert ds.urn in group.dependencies, group.urn


def test_kaito_controller_has_a_node_it_may_run_on(plan):
    """An always-on, non-Spot pool whose taints KAITO's controller tolerates (it tolerates none)."""
    c = one(plan, CLUSTER)
    usable = [p for p in c.inputs["agentPoolProfiles"]
              if p["count"] >= 1 and all(tolerates(KAITO_CONTROLLER_TOLERATIONS, t) for t in p.get("nodeTaints", []))]
    usable += [p.inputs for p in plan.by_type(POOL) if p.inputs["minCount"] >= 1
               and p.inputs["scaleSetPriority"] == "Regular"
               and all(tolerates(KAITO_CONTROLLER_TOLERATIONS, t) for t in p.inputs["nodeTaints"])]
    assert usable, c.urn


def test_every_azure_child_is_parented_to_its_component(plan):
    components = {r.urn for r in plan.resources if r.type.startswith("kaito-gitops:infra:")}
    for r in plan.resources:
        if r.type.startswith(("azure-native:", "kubernetes:")) and r.type != "azure-native:resources:ResourceGroup":
            assert r.parent in components, r.urn


def test_a_namespace_per_team(plan):
    names = {r.inputs["metadata"]["name"] for r in plan.by_type("kubernetes:core/v1:Namespace")}
    assert names == set(plan.environment.defaults["teams"])


def _objects(plan: Plan):
    """The rendered objects as registered: one `kubernetes:<apiVersion>:<kind>` resource each (the cluster's
    own add-ons, such as the device plugin, carry no part-of label of ours)."""
    return [r for r in plan.resources if r.type.startswith("kubernetes:") and r.type != NAMESPACE
            and r.inputs.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/part-of") == "kaito-gitops"]


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


def test_each_object_keeps_the_urn_it_had_in_its_config_group(plan):
    """Objects used to be children of a yaml/v2 ConfigGroup `<env>-<workload>` under the Workloads component,
    named `<group>:<namespace>/<name>` (pulumi-kubernetes provider/pkg/provider/yaml/v2/configgroup.go and
    yaml.go `register`); the alias lets an existing stack keep them rather than delete and re-create them."""
    stack, workloads = f"urn:pulumi:{plan.env}::kaito-gitops", "kaito-gitops:infra:Workloads"
    objects = _objects(plan)
    assert objects or plan.env == "prod"
    for resource in objects:
        meta = resource.inputs["metadata"]
        workload = meta["labels"]["app.kubernetes.io/name"]
        name = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
        assert resource.urn == f"{stack}::{workloads}${resource.type}::{name}"
        assert resource.aliases == [
            f"{stack}::{workloads}$kubernetes:yaml/v2:ConfigGroup${resource.type}::{plan.env}-{workload}:{name}"]
    namespaces = plan.by_type(NAMESPACE)
    assert namespaces and all(not r.aliases for r in namespaces)  # their names and parent never changed


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


def test_kaito_controller_tolerations_are_the_charts():
    if not (KAITO_REPO / "HEAD").exists():
        pytest.skip(f"KAITO's source is not on this machine ({KAITO_REPO})")
    values = subprocess.run(["git", "-C", str(KAITO_REPO), "show", f"{KAITO_COMMIT}:charts/kaito/workspace/values.yaml"],
                            capture_output=True, text=True, check=True).stdout
    assert (yaml.safe_load(values).get("tolerations") or []) == KAITO_CONTROLLER_TOLERATIONS


def test_a_runner_ip_without_an_address_stops_the_deployment_rather_than_open_the_api_server():
    """An empty authorized list means "any address" to AKS, so a missing IP must not shrink it to that."""
    from infra.program import _host_range

    assert _host_range("203.0.113.10") == "203.0.113.10/32"
    with pytest.raises(ValueError, match="refusing to leave the API server open"):
        _host_range(None)
