"""An empty moto account made into the proposal's public half: a VPC with subnet 192.168.1.0/24,
the gateway instance (its ENI), and helpers to launch VMs that never send a packet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SUBNET = "192.168.1.0/24"


@dataclass
class AwsWorld:
    ec2: Any
    vpc: str
    subnet: str
    gateway_instance: str
    gateway_eni: str
    gateway_group: str

    def launch_vm(self, ip: str) -> tuple[str, str]:
        """A VM at `ip` (instance id, ENI id); it never sends a packet."""
        reply = self.ec2.run_instances(
            ImageId="ami-12c6146b",
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            SubnetId=self.subnet,
            PrivateIpAddress=ip,
        )
        instance = reply["Instances"][0]
        return instance["InstanceId"], instance["NetworkInterfaces"][0]["NetworkInterfaceId"]

    def terminate(self, instance: str) -> None:
        self.ec2.terminate_instances(InstanceIds=[instance])

    def eni(self, eni: str | None = None) -> dict[str, Any]:
        return self.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni or self.gateway_eni])["NetworkInterfaces"][
            0
        ]

    def secondary(self) -> set[str]:
        return {a["PrivateIpAddress"] for a in self.eni()["PrivateIpAddresses"] if not a.get("Primary")}

    def cloud_block(self, endpoint_url: str, **extra: Any) -> dict[str, Any]:
        return {
            "region": "eu-west-1",
            "vpc": self.vpc,
            "subnet": self.subnet,
            "gateway_eni": self.gateway_eni,
            "endpoint_url": endpoint_url,
            **extra,
        }


def make_aws_world(ec2: Any, gateway_type: str = "m5.large", gateway_ip: str = "192.168.1.254") -> AwsWorld:
    vpc = ec2.create_vpc(CidrBlock="192.168.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=SUBNET)["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="gateway", Description="the admin's own", VpcId=vpc)["GroupId"]
    reply = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        InstanceType=gateway_type,
        SubnetId=subnet,
        PrivateIpAddress=gateway_ip,
        SecurityGroupIds=[group],
    )
    instance = reply["Instances"][0]
    return AwsWorld(
        ec2, vpc, subnet, instance["InstanceId"], instance["NetworkInterfaces"][0]["NetworkInterfaceId"], group
    )
