"""Burst VMs on AWS (moto behind the strict layer): RunInstances at the chosen private address with
the policy's tags, found again by those tags after a restart, and terminated; the burst loop on top
of it neither loses nor doubles a VM when the controller restarts in the middle of a scale-out."""

from __future__ import annotations

from ipaddress import IPv4Address

from sqlalchemy import select

from cloudgw.controller.burstloop import BurstLoop
from cloudgw.controller.config_writes import apply_topology
from cloudgw.controller.db.engine import make_engine, migrate
from cloudgw.controller.db.models import BurstVmRow
from cloudgw.controller.state import State
from cloudgw.model.topologyfile import TopologyFile
from cloudgw.providers.aws import Aws
from cloudgw.providers.base import ProviderError, VmSpec
from cloudgw.providers.registry import provider_for
from tests.clouds.aws_world import make_aws_world


def instances(ec2, policy: str) -> dict[str, str]:
    found = {}
    for reservation in ec2.describe_instances(Filters=[{"Name": "tag:cloudgw:burst", "Values": [policy]}])[
        "Reservations"
    ]:
        for instance in reservation["Instances"]:
            found[instance["PrivateIpAddress"]] = instance["State"]["Name"]
    return found


def test_launch_list_terminate(aws):
    world = make_aws_world(aws.ec2)
    from cloudgw.model.cloud import AwsCloud

    provider = Aws("public", AwsCloud(region="eu-west-1", subnet=world.subnet, endpoint_url=aws.url))
    spec = VmSpec("web", IPv4Address("192.168.1.15"), "ami-12c6146b", "t3.small", "#!/bin/sh\n")
    instance = provider.launch_vm(spec)
    assert provider.list_vms("web") == {IPv4Address("192.168.1.15"): instance}
    assert provider.list_vms("other") == {}
    tags = {
        t["Key"]: t["Value"]
        for r in aws.ec2.describe_instances(InstanceIds=[instance])["Reservations"]
        for t in r["Instances"][0]["Tags"]
    }
    assert tags["cloudgw:burst"] == "web" and tags["cloudgw:ip"] == "192.168.1.15" and tags["cloudgw:site"] == "public"
    provider.terminate_vm(instance)
    assert provider.list_vms("web") == {}
    provider.terminate_vm(instance)  # already gone: done
    try:
        provider.launch_vm(VmSpec("web", IPv4Address("10.9.9.9"), "ami-12c6146b", "t3.small"))
    except ProviderError as exc:  # the strict layer refuses an address outside the subnet, as AWS does
        assert "10.9.9.9" in str(exc) or "Address" in str(exc) or "InvalidParameterValue" in str(exc)
    else:
        raise AssertionError("an address outside the subnet was accepted")


def test_the_loop_on_aws_restarted_mid_scale_out(aws, tmp_path):
    world = make_aws_world(aws.ec2)
    engine = make_engine(f"sqlite:///{tmp_path}/controller.db")
    migrate(engine)
    state = State(engine)
    topology = {
        "sites": [
            {"name": "private"},
            {
                "name": "public",
                "provider": "aws",
                "aws": {
                    "region": "eu-west-1",
                    "subnet": world.subnet,
                    "gateway_eni": world.gateway_eni,
                    "endpoint_url": aws.url,
                },
            },
        ],
        "networks": [{"name": "lab", "cidr": "192.168.1.0/24"}],
        "pools": [
            {"network": "lab", "site": "private", "range": "192.168.1.4-192.168.1.10"},
            {"network": "lab", "site": "public", "range": "192.168.1.11-192.168.1.20"},
        ],
        "gateways": [
            {"name": "private-gw", "site": "private", "lan_addresses": ["192.168.1.253"]},
            {"name": "public-gw", "site": "public", "lan_addresses": ["192.168.1.254"]},
        ],
        "connections": [{"network": "lab", "site_a": "private", "site_b": "public"}],
        "bursts": [
            {
                "name": "web",
                "network": "lab",
                "site": "public",
                "signal": {"kind": "pool", "pool": "private-lab"},
                "scale_out_above": -1.0,  # any demand: scale out to the maximum
                "scale_in_below": -2.0,
                "max_vms": 2,
                "step": 2,
                "warmup": 0,
                "template": {"image": "ami-12c6146b", "size": "t3.small"},
            }
        ],
    }
    apply_topology(state, "test", TopologyFile.model_validate(topology))
    clock = {"now": 2_000_000.0}

    class CrashingAws:
        """The real provider, but the controller "dies" as the first RunInstances returns: the VM
        exists in the cloud, its ID never reached the database."""

        def __init__(self, site):
            self.inner = provider_for(site)

        def launch_vm(self, vm):
            self.inner.launch_vm(vm)
            raise ProviderError("controller stopped")

        def __getattr__(self, name):
            return getattr(self.inner, name)

    first = BurstLoop(state, lambda: True, CrashingAws, clock=lambda: clock["now"])
    assert first.run_once()["web"].startswith("cloud error")
    with state.session() as session:
        rows = {r.ip: r.instance for r in session.scalars(select(BurstVmRow))}
    assert sorted(rows) == ["192.168.1.11", "192.168.1.12"] and rows["192.168.1.11"] is None  # the crash lost the ID
    assert instances(aws.ec2, "web") == {"192.168.1.11": "running"}
    clock["now"] += 5
    restarted = BurstLoop(state, lambda: True, provider_for, clock=lambda: clock["now"])
    restarted.run_once()
    assert instances(aws.ec2, "web") == {"192.168.1.11": "running", "192.168.1.12": "running"}  # no third
    with state.session() as session:
        assert all(r.instance and r.state == "running" for r in session.scalars(select(BurstVmRow)))
    engine.dispose()
