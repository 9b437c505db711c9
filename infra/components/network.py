"""Virtual network and node subnet for Azure CNI overlay (pods get overlay IPs, only nodes use the subnet)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network


@dataclass
class NetworkArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    vnet_cidr: str
    node_subnet_cidr: str


class Network(pulumi.ComponentResource):
    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kaito-gitops:infra:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.vnet = network.VirtualNetwork(
            f"{name}-vnet", resource_group_name=args.resource_group_name, location=args.location,
            address_space={"address_prefixes": [args.vnet_cidr]}, opts=child)
        self.node_subnet = network.Subnet(
            f"{name}-nodes", resource_group_name=args.resource_group_name,
            virtual_network_name=self.vnet.name, address_prefix=args.node_subnet_cidr,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["routeTable", "networkSecurityGroup"]))
        self.register_outputs({"vnet_id": self.vnet.id, "node_subnet_id": self.node_subnet.id})
