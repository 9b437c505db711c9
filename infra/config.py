"""The stack's configuration, read and validated in one place.

Stack files (`Pulumi.<stack>.yaml`) hold only values; every rule lives here, and a bad
value is reported with the key, the rule and the allowed values, all problems at once.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from infra import catalog

NAMESPACE = "kaito-gitops"
# Regions where the NC A100 v4 series is offered (Azure products-by-region, 2026).
REGIONS = ("australiaeast", "canadacentral", "centralindia", "centralus", "eastus", "eastus2", "francecentral",
           "germanywestcentral", "japaneast", "koreacentral", "northeurope", "southcentralus", "southeastasia",
           "swedencentral", "switzerlandnorth", "uksouth", "westeurope", "westus2", "westus3")
UPGRADE_CHANNELS = ("patch", "stable", "rapid", "node-image", "none")
NODE_OS_CHANNELS = ("NodeImage", "SecurityPatch", "Unmanaged", "None")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ACR_SKUS = ("Basic", "Standard", "Premium")
POOL_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")  # AKS: lower-case alphanumeric, at most 12 for Linux
ACR_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
K8S_VERSION = re.compile(r"^1\.\d{2,}(\.\d+)?$")
CIDR = re.compile(r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")
GUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
# AKS: the delegated API server subnet must be at least a /28 (api-server-vnet-integration.md).
API_SERVER_SUBNET_MAX_PREFIX = 28
# Azure's smallest IPv4 subnet (Azure Virtual Network FAQ: "The smallest supported IPv4 subnet is /29").
SUBNET_MAX_PREFIX = 29
# AKS's placeholder range: only the cluster's own outbound IP, nobody outside (api-server-authorized-ip-ranges.md).
CLUSTER_ONLY_RANGE = "0.0.0.0/32"
# AKS concepts-storage.md recommends at least 512 GiB when the OS disk cannot be ephemeral; KAITO
# preset images (tens of GiB each) land on the OS disk.
GPU_OS_DISK_GIB = 512


class ConfigError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class GpuPoolConfig:
    name: str
    vm_size: str
    min_count: int
    max_count: int
    spot: bool
    spot_max_price: float  # -1: pay up to the regular price
    os_disk_size_gb: int = GPU_OS_DISK_GIB


@dataclass(frozen=True)
class StackConfig:
    stack: str
    location: str
    kubernetes_version: str
    registry_name: str
    registry_sku: str = "Premium"
    system_vm_size: str = "Standard_D4ds_v5"
    system_node_count: int = 2
    system_os_disk_size_gb: int = 128
    gpu_pools: tuple[GpuPoolConfig, ...] = field(default_factory=tuple)
    protect: bool = False
    private_cluster: bool = False
    upgrade_channel: str = "patch"
    node_os_upgrade_channel: str = "NodeImage"
    maintenance_day: str = "Sunday"
    maintenance_start_hour: int = 2
    maintenance_duration_hours: int = 4
    vnet_cidr: str = "10.224.0.0/12"
    node_subnet_cidr: str = "10.224.0.0/16"
    pod_cidr: str = "10.244.0.0/16"
    admin_group_object_ids: tuple[str, ...] = ()
    legacy_gpu_provisioner: bool = False
    api_server_subnet_cidr: str = "10.225.0.0/28"
    api_server_authorized_ip_ranges: tuple[str, ...] = ()
    preview_principal_id: str = ""
    runner_subnet_cidr: str = ""  # "": no deploy-runner subnet

    @property
    def login_server(self) -> str:
        return f"{self.registry_name.lower()}.azurecr.io"


# key -> (description, default); Pulumi.yaml documents the same keys (a test keeps them in step).
KEYS: dict[str, tuple[str, Any]] = {
    "location": ("Azure region", None),
    "kubernetesVersion": ("AKS Kubernetes version (minor or patch) inside AKS's support window, e.g. 1.36", None),
    "registryName": ("ACR name (5-50 letters and digits); adapter images go here", None),
    "registrySku": ("ACR SKU", "Premium"),
    "systemVmSize": ("VM size of the system pool", "Standard_D4ds_v5"),
    "systemNodeCount": ("nodes in the system pool", 2),
    "systemOsDiskSizeGB": ("OS disk of each system node in GiB (ephemeral where the VM's local disk holds it)", 128),
    "gpuPools": ("GPU pools: name, vmSize, minCount, maxCount, spot, spotMaxPrice, osDiskSizeGB", None),
    "protect": ("protect the cluster and registry from deletion", False),
    "privateCluster": ("private API server", False),
    "upgradeChannel": ("cluster auto-upgrade channel", "patch"),
    "nodeOsUpgradeChannel": ("node OS upgrade channel", "NodeImage"),
    "maintenanceDay": ("day of the weekly maintenance window", "Sunday"),
    "maintenanceStartHour": ("UTC hour the maintenance window starts", 2),
    "maintenanceDurationHours": ("length of the maintenance window in hours (at least 4)", 4),
    "vnetCidr": ("address space of the virtual network", "10.224.0.0/12"),
    "nodeSubnetCidr": ("subnet of the nodes", "10.224.0.0/16"),
    "podCidr": ("Azure CNI overlay pod CIDR", "10.244.0.0/16"),
    "adminGroupObjectIds": ("Entra ID groups that get cluster-admin", []),
    "legacyGpuProvisioner": ("wire the legacy KAITO gpu-provisioner identity (off: AKS runs it in the control plane)",
                             False),
    "apiServerSubnetCidr": ("delegated subnet the API server is projected into (API Server VNet Integration, >= /28)",
                            "10.225.0.0/28"),
    "apiServerAuthorizedIpRanges": ("CIDRs allowed to reach a public API server, besides the deploy runner's egress "
                                    "([] and no runner subnet: any)", []),
    "runnerSubnetCidr": ("subnet for the self-hosted deploy runner, behind a NAT gateway whose static IP the API "
                         "server admits; empty: none", ""),
    "previewPrincipalId": ("object id of the pull-request preview identity (read-only Kubernetes view); empty: none",
                           ""),
}


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("must be true or false")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    try:
        return int(str(value))
    except ValueError:
        raise ValueError("must be a whole number") from None


def _structured(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def from_values(stack: str, values: dict[str, Any]) -> StackConfig:
    """Validate raw values (as in the stack file, keys without the namespace)."""
    problems: list[str] = []

    def get(key: str, convert: Callable[[Any], Any] = lambda v: v, rule: Callable[[Any], str] | None = None) -> Any:
        description, default = KEYS[key]
        raw = values.get(key, default)
        if raw is None:
            problems.append(f"{NAMESPACE}:{key}: required ({description})")
            return None
        try:
            value = convert(raw)
        except (ValueError, TypeError, json.JSONDecodeError) as err:
            problems.append(f"{NAMESPACE}:{key}: {raw!r} {err}")
            return None
        message = rule(value) if rule else ""
        if message:
            problems.append(f"{NAMESPACE}:{key}: {value!r} {message}")
        return value

    def one_of(allowed: tuple[str, ...]) -> Callable[[Any], str]:
        return lambda v: "" if v in allowed else "is not allowed; allowed: " + ", ".join(allowed)

    def matches(pattern: re.Pattern, rule: str) -> Callable[[Any], str]:
        return lambda v: "" if isinstance(v, str) and pattern.fullmatch(v) else rule

    for key in values:
        if key not in KEYS:
            problems.append(f"{NAMESPACE}:{key}: unknown key; known keys: " + ", ".join(sorted(KEYS)))
    cpu_sizes = sorted(n for n, s in catalog.skus().items() if not s.gpus)
    pools = get("gpuPools", _structured)
    cfg: dict[str, Any] = dict(
        stack=stack,
        location=get("location", str, one_of(REGIONS)),
        kubernetes_version=get("kubernetesVersion", str, matches(K8S_VERSION, "must look like 1.36 or 1.36.2 (quoted)")),
        registry_name=get("registryName", str, matches(ACR_NAME, "must be 5-50 letters and digits")),
        registry_sku=get("registrySku", str, one_of(ACR_SKUS)),
        system_vm_size=get("systemVmSize", str, one_of(tuple(cpu_sizes))),
        system_node_count=get("systemNodeCount", _int, lambda v: "" if 1 <= v <= 10 else "must be between 1 and 10"),
        system_os_disk_size_gb=get("systemOsDiskSizeGB", _int, _disk_size),
        gpu_pools=tuple(_gpu_pools(pools, problems)) if pools is not None else (),
        protect=get("protect", _bool),
        private_cluster=get("privateCluster", _bool),
        upgrade_channel=get("upgradeChannel", str, one_of(UPGRADE_CHANNELS)),
        node_os_upgrade_channel=get("nodeOsUpgradeChannel", str, one_of(NODE_OS_CHANNELS)),
        maintenance_day=get("maintenanceDay", str, one_of(DAYS)),
        maintenance_start_hour=get("maintenanceStartHour", _int, lambda v: "" if 0 <= v <= 23 else "must be 0-23"),
        maintenance_duration_hours=get("maintenanceDurationHours", _int,
                                       lambda v: "" if 4 <= v <= 24 else "must be 4-24 (AKS needs at least 4)"),
        vnet_cidr=get("vnetCidr", str, matches(CIDR, "must be a CIDR such as 10.224.0.0/12")),
        node_subnet_cidr=get("nodeSubnetCidr", str, matches(CIDR, "must be a CIDR such as 10.224.0.0/16")),
        pod_cidr=get("podCidr", str, matches(CIDR, "must be a CIDR such as 10.244.0.0/16")),
        admin_group_object_ids=tuple(get("adminGroupObjectIds", _structured, _guids) or ()),
        legacy_gpu_provisioner=get("legacyGpuProvisioner", _bool),
        api_server_subnet_cidr=get("apiServerSubnetCidr", str, _network),
        api_server_authorized_ip_ranges=tuple(get("apiServerAuthorizedIpRanges", _structured, _networks) or ()),
        preview_principal_id=get("previewPrincipalId", str,
                                 lambda v: "" if v == "" or GUID.match(v) else "must be an object id (a GUID) or empty"),
        runner_subnet_cidr=get("runnerSubnetCidr", str, lambda v: _network(v) if v else ""),
    )
    if not problems:
        problems += _network_rules(cfg)
    if problems:
        raise ConfigError(problems)
    return StackConfig(**cfg)


def _disk_size(value: int) -> str:
    return "" if 30 <= value <= 2048 else "must be 30-2048 GiB (AKS OS disk sizes)"


def _network(value: Any) -> str:
    try:
        ipaddress.ip_network(value)
    except (ValueError, TypeError):
        return "must be a network CIDR such as 10.225.0.0/28 (host bits zero)"
    return ""


def _networks(value: Any) -> str:
    if not isinstance(value, list):
        return "must be a list of CIDRs"
    bad = [v for v in value if _network(v)]
    return f"has entries that are not network CIDRs: {bad}" if bad else ""


def _guids(value: Any) -> str:
    if not isinstance(value, list) or not all(isinstance(v, str) and GUID.match(v) for v in value):
        return "must be a list of Entra ID object ids (GUIDs)"
    return ""


def _network_rules(cfg: dict[str, Any]) -> list[str]:
    """Rules across keys: the API server and runner subnets, and who can reach the API server."""
    problems = []
    vnet, nodes = ipaddress.ip_network(cfg["vnet_cidr"], strict=False), ipaddress.ip_network(cfg["node_subnet_cidr"], strict=False)
    api = ipaddress.ip_network(cfg["api_server_subnet_cidr"])
    key = f"{NAMESPACE}:apiServerSubnetCidr"
    if api.prefixlen > API_SERVER_SUBNET_MAX_PREFIX:
        problems.append(f"{key}: {api} is smaller than AKS's minimum /28 for the API server subnet")
    if not api.subnet_of(vnet):  # type: ignore[arg-type]
        problems.append(f"{key}: {api} must lie inside vnetCidr {vnet}")
    if api.overlaps(nodes):
        problems.append(f"{key}: {api} overlaps nodeSubnetCidr {nodes}")
    runner = ipaddress.ip_network(cfg["runner_subnet_cidr"]) if cfg["runner_subnet_cidr"] else None
    key = f"{NAMESPACE}:runnerSubnetCidr"
    if runner is not None:
        if runner.prefixlen > SUBNET_MAX_PREFIX:
            problems.append(f"{key}: {runner} is smaller than Azure's smallest subnet, /29")
        if not runner.subnet_of(vnet):  # type: ignore[arg-type]
            problems.append(f"{key}: {runner} must lie inside vnetCidr {vnet}")
        for other, name in ((nodes, "nodeSubnetCidr"), (api, "apiServerSubnetCidr")):
            if runner.overlaps(other):
                problems.append(f"{key}: {runner} overlaps {name} {other}")
    ranges = cfg["api_server_authorized_ip_ranges"]
    key = f"{NAMESPACE}:apiServerAuthorizedIpRanges"
    public = not cfg["private_cluster"]
    if not public and ranges:
        problems.append(f"{key}: AKS cannot combine authorized IP ranges with a private cluster; "
                        "set privateCluster: false or remove the ranges")
    if CLUSTER_ONLY_RANGE in ranges and (len(ranges) > 1 or runner is not None):
        problems.append(f"{key}: {CLUSTER_ONLY_RANGE} is AKS's placeholder for \"nobody outside the cluster\" and "
                        "cannot be combined with other ranges or runnerSubnetCidr; remove it")
    elif public and cfg["protect"] and CLUSTER_ONLY_RANGE in ranges:
        problems.append(f"{key}: {CLUSTER_ONLY_RANGE} admits nobody outside the cluster, so no deploy job could reach "
                        "this protected stack's API server; set runnerSubnetCidr (the deploy runner's subnet, whose "
                        "NAT gateway IP the program admits) or list the CIDRs that deploy (docs/infrastructure.md, "
                        "\"Reaching the API server\")")
    elif public and cfg["protect"] and not ranges and runner is None:
        problems.append(f"{key}: a protected stack with a public API server must say who may reach it: set "
                        "runnerSubnetCidr (the deploy runner's subnet) or list the CIDRs that deploy")
    return problems


def _gpu_pools(raw: Any, problems: list[str]) -> list[GpuPoolConfig]:
    key = f"{NAMESPACE}:gpuPools"
    if not isinstance(raw, list) or not raw:
        problems.append(f"{key}: must be a non-empty list of pools")
        return []
    pools, names = [], set()
    allowed = {"name", "vmSize", "minCount", "maxCount", "spot", "spotMaxPrice", "osDiskSizeGB"}
    for i, pool in enumerate(raw):
        where = f"{key}[{i}]"
        if not isinstance(pool, dict):
            problems.append(f"{where}: must be a mapping with {', '.join(sorted(allowed))}")
            continue
        for extra in sorted(set(pool) - allowed):
            problems.append(f"{where}.{extra}: unknown key; allowed: {', '.join(sorted(allowed))}")
        name, vm_size = pool.get("name"), pool.get("vmSize", "Standard_NC24ads_A100_v4")
        if not isinstance(name, str) or not POOL_NAME.fullmatch(name):
            problems.append(f"{where}.name: {name!r} must be 1-12 lower-case letters and digits, starting with a letter")
        elif name in names:
            problems.append(f"{where}.name: {name!r} is used twice")
        else:
            names.add(name)
        if not isinstance(vm_size, str) or vm_size not in catalog.gpu_skus():
            problems.append(f"{where}.vmSize: {vm_size!r} is not a known GPU size; allowed: " + ", ".join(catalog.gpu_skus()))
        try:
            low, high = _int(pool.get("minCount", 0)), _int(pool.get("maxCount", 1))
            spot = _bool(pool.get("spot", False))
            price = float(pool.get("spotMaxPrice", -1))
            disk = _int(pool.get("osDiskSizeGB", GPU_OS_DISK_GIB))
        except (ValueError, TypeError, OverflowError) as err:  # a list or mapping where a number goes, too
            problems.append(f"{where}: {err}")
            continue
        if not 0 <= low <= high or high < 1 or high > 100:
            problems.append(f"{where}: minCount {low} and maxCount {high} must satisfy 0 <= minCount <= maxCount, 1 <= maxCount <= 100")
        if price != -1 and not 0 < price < math.inf:  # NaN fails both comparisons
            problems.append(f"{where}.spotMaxPrice: {price} must be -1 (up to the regular price) or a positive USD price")
        if _disk_size(disk):
            problems.append(f"{where}.osDiskSizeGB: {disk} {_disk_size(disk)}")
        pools.append(GpuPoolConfig(str(name), vm_size, low, high, spot, price, disk))
    return pools


def from_pulumi(stack: str) -> StackConfig:
    """The running stack's config (under `pulumi up` or the offline plan)."""
    import pulumi

    config = pulumi.Config(NAMESPACE)
    values = {key: config.get(key) for key in KEYS if config.get(key) is not None}
    return from_values(stack, values)
