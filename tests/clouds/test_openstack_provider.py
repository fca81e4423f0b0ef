"""The OpenStack provider through openstacksdk against the fake Keystone/Neutron (tests/clouds/
openstack_fake.py): allowed address pairs, allocation pools, the tunnel port, clean-up, preflight."""

from __future__ import annotations

from ipaddress import IPv4Address

from cloudgw.model.topology import Announcement
from cloudgw.model.topologyfile import parse_file, to_topology
from cloudgw.providers.base import Need
from cloudgw.providers.need import need_for
from cloudgw.providers.registry import preflight_site, provider_for
from tests.clouds.openstack_fake import make_openstack_world
from tests.clouds.test_aws_provider import converge


def topology(world, mtu=1380, public_range="192.168.1.11-192.168.1.20"):
    text = f"""version: 1
sites:
  - name: private
    provider: openstack
    openstack: {{cloud: private-cloud, subnet: tenant-subnet, gateway_port: {world["port"]["id"]}}}
  - {{name: public, provider: aws}}
networks: [{{name: lab, cidr: 192.168.1.0/24}}]
pools:
  - {{network: lab, site: private, range: 192.168.1.4-192.168.1.10}}
  - {{network: lab, site: public, range: {public_range}}}
gateways:
  - {{name: private-gw, site: private, endpoint: "203.0.113.10:51820", lan_addresses: [192.168.1.253]}}
  - {{name: public-gw, site: public, endpoint: "198.51.100.20:51820", lan_addresses: [192.168.1.254]}}
connections: [{{network: lab, site_a: private, site_b: public, mtu: {mtu}}}]
"""
    return to_topology(parse_file(text))


def test_apply_opens_the_port_for_the_remote_pool_and_cleans_up(openstack_cloud):
    fake = openstack_cloud
    world = make_openstack_world(fake)
    foreign = {"ip_address": "10.9.9.9"}  # the admin's own pair: never touched
    fake.get("ports", world["port"]["id"])["allowed_address_pairs"] = [foreign]
    vm = fake.add(
        "ports",
        name="vm1",
        network_id=world["network"]["id"],
        device_owner="compute:nova",
        fixed_ips=[{"subnet_id": world["subnet"]["id"], "ip_address": "192.168.1.5"}],
    )
    topo = topology(world)
    provider = provider_for(topo.sites["private"])
    need = need_for(topo, "private")
    seen, owned = converge(provider, need)
    port = fake.get("ports", world["port"]["id"])
    pairs = sorted(p["ip_address"] for p in port["allowed_address_pairs"])
    assert pairs == sorted(["10.9.9.9", "192.168.1.11/32", "192.168.1.12/30", "192.168.1.16/30", "192.168.1.20/32"])
    pools = fake.get("subnets", world["subnet"]["id"])["allocation_pools"]
    assert pools == [{"start": "192.168.1.2", "end": "192.168.1.10"}, {"start": "192.168.1.21", "end": "192.168.1.254"}]
    group = fake.data["security-groups"][owned["security_group"]]
    rules = group["security_group_rules"]
    assert sorted((r["protocol"], r["port_range_min"], r["port_range_max"], r["remote_ip_prefix"]) for r in rules) == [
        ("icmp", 8, None, "198.51.100.20/32"),
        ("udp", 51820, 51820, "198.51.100.20/32"),
    ]
    assert owned["security_group"] in port["security_groups"]
    assert seen.inventory == {IPv4Address("192.168.1.5"): vm["mac_address"]}
    assert provider.plan(need, provider.observe(need, owned)) == []  # a second pass changes nothing
    writes = [r for r in fake.requests if r[0] != "GET"]
    _, owned = converge(provider, Need.removal("private", "openstack"), owned)
    port = fake.get("ports", world["port"]["id"])
    assert port["allowed_address_pairs"] == [foreign]
    assert fake.get("subnets", world["subnet"]["id"])["allocation_pools"] == [
        {"start": "192.168.1.2", "end": "192.168.1.254"}
    ]
    assert port["security_groups"] == [world["default_group"]["id"]]
    assert [g["name"] for g in fake.data["security-groups"].values()] == ["default"]
    assert len(writes) >= 4


def test_preflight_port_security_mtu_and_collisions(openstack_cloud):
    fake = openstack_cloud
    world = make_openstack_world(fake, network_mtu=1400)
    fake.add(
        "ports",
        name="stray",
        network_id=world["network"]["id"],
        device_owner="compute:nova",
        fixed_ips=[{"subnet_id": world["subnet"]["id"], "ip_address": "192.168.1.12"}],
    )
    topo = topology(world, mtu=1420, public_range=["192.168.1.1-192.168.1.3", " 192.168.1.11-192.168.1.20"][1].strip())
    topo.announcements[("lab", IPv4Address("192.168.1.15"), "public-gw")] = Announcement(
        "lab", IPv4Address("192.168.1.15"), "public-gw"
    )
    found = preflight_site(topo, "private", provider_for(topo.sites["private"]), {})
    by = {f.check: f for f in found}
    assert by["port-security"].severity == "change" and "allowed address pairs" in by["port-security"].message
    assert by["allocation-pool"].severity == "change"
    assert by["address-in-use"].severity == "error" and "192.168.1.12" in by["address-in-use"].message
    assert by["mtu"].severity == "error" and "1480-byte" in by["mtu"].message and "mtu: 1328" in by["mtu"].fix
    assert by["tunnel-port"].severity == "change"
    assert [r for r in fake.requests if r[0] != "GET" and "auth/tokens" not in r[1]] == []  # nothing changed


def test_pairs_are_not_set_on_a_port_without_port_security(openstack_cloud):
    fake = openstack_cloud
    world = make_openstack_world(fake)
    fake.get("ports", world["port"]["id"])["port_security_enabled"] = False
    topo = topology(world)
    _, owned = converge(provider_for(topo.sites["private"]), need_for(topo, "private"))
    assert fake.get("ports", world["port"]["id"])["allowed_address_pairs"] == []
    assert "pairs" not in owned


def test_an_ha_pair_has_the_pairs_and_the_tunnel_port_on_both_ports(openstack_cloud):
    """On OpenStack a failover changes nothing in Neutron: both gateways' ports already accept the
    remote addresses and the tunnel's traffic."""
    fake = openstack_cloud
    world = make_openstack_world(fake)
    second = fake.add(
        "ports",
        name="gateway2-lan",
        network_id=world["network"]["id"],
        device_owner="compute:nova",
        fixed_ips=[{"subnet_id": world["subnet"]["id"], "ip_address": "192.168.1.252"}],
        security_groups=[world["default_group"]["id"]],
    )
    text = f"""version: 1
sites:
  - name: private
    provider: openstack
    openstack: {{cloud: private-cloud, subnet: tenant-subnet, gateway_port: {world["port"]["id"]},
                gateway: private-gw, standby: private-gw2, standby_port: {second["id"]}}}
  - {{name: public, provider: aws}}
networks: [{{name: lab, cidr: 192.168.1.0/24}}]
pools:
  - {{network: lab, site: private, range: 192.168.1.4-192.168.1.10}}
  - {{network: lab, site: public, range: 192.168.1.11-192.168.1.20}}
gateways:
  - {{name: private-gw, site: private, endpoint: "203.0.113.10:51820", lan_addresses: [192.168.1.253]}}
  - {{name: private-gw2, site: private, endpoint: "203.0.113.11:51820", lan_addresses: [192.168.1.252]}}
  - {{name: public-gw, site: public, endpoint: "198.51.100.20:51820", lan_addresses: [192.168.1.254]}}
connections: [{{network: lab, site_a: private, site_b: public}}]
"""
    topo = to_topology(parse_file(text))
    provider = provider_for(topo.sites["private"])
    _, owned = converge(provider, need_for(topo, "private"))
    wanted = ["192.168.1.11/32", "192.168.1.12/30", "192.168.1.16/30", "192.168.1.20/32"]
    for port_id in (world["port"]["id"], second["id"]):
        port = fake.get("ports", port_id)
        assert sorted(p["ip_address"] for p in port["allowed_address_pairs"]) == wanted
        assert owned["security_group"] in port["security_groups"]
    # the other port's addresses are the pair's own, not a VM's that collides with a remote pool
    assert IPv4Address("192.168.1.252") not in provider.observe(need_for(topo, "private"), owned).facts["elsewhere"]
    # removal takes both back
    converge(provider, Need.removal("private", "openstack"), owned)
    for port_id in (world["port"]["id"], second["id"]):
        port = fake.get("ports", port_id)
        assert port["allowed_address_pairs"] == [] and port["security_groups"] == [world["default_group"]["id"]]
