"""Virtual network, node subnet, the delegated API server subnet and, optionally, the deploy runner's subnet.

Azure CNI overlay: pods get overlay IPs, only nodes use the node subnet. API Server VNet Integration
projects the API server into its own subnet, delegated to AKS, so nodes reach it privately whether or
not the endpoint is also public (AKS api-server-vnet-integration.md).

The runner subnet is where a self-hosted GitHub runner for the deploy jobs lives. Its outbound traffic
leaves through a NAT gateway with one static public IP (Azure NAT gateway: a subnet's outbound
connections use the gateway's IPs), so the API server's authorized ranges can name that one address;
GitHub's hosted runners have no fixed addresses (docs/infrastructure.md, "Reaching the API server").
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
    runner_subnet_cidr: str  # "": none


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
        self.runner_egress_ip: network.PublicIPAddress | None = None
        self.runner_subnet: network.Subnet | None = None
        if args.runner_subnet_cidr:
            self.runner_egress_ip = network.PublicIPAddress(
                f"{name}-runner-egress", resource_group_name=args.resource_group_name, location=args.location,
                sku={"name": "Standard"}, public_ip_allocation_method="Static", public_ip_address_version="IPv4",
                opts=pulumi.ResourceOptions(parent=self))
            nat = network.NatGateway(
                f"{name}-runner-nat", resource_group_name=args.resource_group_name, location=args.location,
                sku={"name": "Standard"}, public_ip_addresses=[{"id": self.runner_egress_ip.id}],
                opts=pulumi.ResourceOptions(parent=self))
            self.runner_subnet = network.Subnet(
                f"{name}-runner", resource_group_name=args.resource_group_name,
                virtual_network_name=self.vnet.name, address_prefix=args.runner_subnet_cidr,
                nat_gateway={"id": nat.id},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.api_server_subnet]))
        self.register_outputs({"vnet_id": self.vnet.id, "node_subnet_id": self.node_subnet.id,
                               "api_server_subnet_id": self.api_server_subnet.id})
