"""Burst VMs on OpenStack (the fake Keystone/Neutron/Nova): a port at the chosen address, the server
on it with the policy in its metadata, found again by that metadata, deleted with its port; a port a
crashed launch left behind is reused, not doubled."""

from __future__ import annotations

from ipaddress import IPv4Address

from cloudgw.model.cloud import OpenStackCloud
from cloudgw.providers.base import VmSpec
from cloudgw.providers.openstack import OpenStack
from tests.clouds.openstack_fake import make_openstack_world


def ports_at(fake, ip: str) -> list[dict]:
    return [p for p in fake.data["ports"].values() if any(f["ip_address"] == ip for f in p.get("fixed_ips", []))]


def test_launch_list_terminate(openstack_cloud):
    fake = openstack_cloud
    world = make_openstack_world(fake)
    provider = OpenStack("private", OpenStackCloud(cloud="private-cloud", subnet=world["subnet"]["id"]))
    vm = VmSpec("web", IPv4Address("192.168.1.7"), "cirros", "m1.small", "#!/bin/sh\necho hi\n")
    instance = provider.launch_vm(vm)
    server = fake.servers[instance]
    assert server["metadata"] == {"cloudgw:burst": "web", "cloudgw:ip": "192.168.1.7"}
    (port,) = ports_at(fake, "192.168.1.7")
    assert port["device_id"] == instance and port["name"] == "cloudgw-burst-web-192.168.1.7"
    assert provider.list_vms("web") == {IPv4Address("192.168.1.7"): instance} and provider.list_vms("other") == {}
    provider.terminate_vm(instance)
    assert instance not in fake.servers and ports_at(fake, "192.168.1.7") == []
    provider.terminate_vm(instance)  # already gone: done
    assert provider.list_vms("web") == {}


def test_a_port_left_by_a_crashed_launch_is_reused(openstack_cloud):
    fake = openstack_cloud
    world = make_openstack_world(fake)
    provider = OpenStack("private", OpenStackCloud(cloud="private-cloud", subnet=world["subnet"]["id"]))
    left = fake.add(
        "ports",
        name="cloudgw-burst-web-192.168.1.8",
        network_id=world["network"]["id"],
        fixed_ips=[{"subnet_id": world["subnet"]["id"], "ip_address": "192.168.1.8"}],
    )
    instance = provider.launch_vm(VmSpec("web", IPv4Address("192.168.1.8"), "cirros", "m1.small"))
    assert [p["id"] for p in ports_at(fake, "192.168.1.8")] == [left["id"]]
    assert fake.data["ports"][left["id"]]["device_id"] == instance
