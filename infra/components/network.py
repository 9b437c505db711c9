"""Virtual network, node subnet and the delegated API server subnet.

Azure CNI overlay: pods get overlay IPs, only nodes use the node subnet. API Server VNet Integration
projects the API server into its own subnet, delegated to AKS, so nodes reach it privately whether or
not the endpoint is also public (AKS api-server-vnet-integration.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network

API_SERVER_DELEGATION = "Microsoft.ContainerService/managedClusters"


@dataclass
class NetworkArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    vnet_cidr: str
    node_subnet_cidr: str
    api_server_subnet_cidr: str


class Network(pulumi.ComponentResource):
    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kaito-gitops:infra:Network", name, None, opts)
        self.vnet = network.VirtualNetwork(
            f"{name}-vnet", resource_group_name=args.resource_group_name, location=args.location,
            address_space={"address_prefixes": [args.vnet_cidr]}, opts=pulumi.ResourceOptions(parent=self))
        # AKS attaches its own route table and NSG to subnets it uses; leave them to it.
        self.node_subnet = network.Subnet(
            f"{name}-nodes", resource_group_name=args.resource_group_name,
            virtual_network_name=self.vnet.name, address_prefix=args.node_subnet_cidr,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["routeTable", "networkSecurityGroup"]))
        self.api_server_subnet = network.Subnet(
            f"{name}-apiserver", resource_group_name=args.resource_group_name,
            virtual_network_name=self.vnet.name, address_prefix=args.api_server_subnet_cidr,
            delegations=[{"name": "aks-apiserver", "service_name": API_SERVER_DELEGATION}],
            # Azure updates one VNet's subnets one at a time.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.node_subnet],
                                        ignore_changes=["routeTable", "networkSecurityGroup"]))
        self.register_outputs({"vnet_id": self.vnet.id, "node_subnet_id": self.node_subnet.id,
                               "api_server_subnet_id": self.api_server_subnet.id})
