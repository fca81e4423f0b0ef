"""The AWS provider against moto behind the strict layer: plan, apply, converge, clean up; and the
strict layer itself refuses what AWS refuses (so passing here means cloudgw never relied on moto's
leniency)."""

from __future__ import annotations

from ipaddress import IPv4Address

import botocore.exceptions
import pytest

from cloudgw.model.topologyfile import parse_file, to_topology
from cloudgw.providers.aws import Aws, acl_verdict
from cloudgw.providers.base import Need
from cloudgw.providers.need import need_for
from cloudgw.providers.registry import preflight_site, provider_for
from tests.clouds.aws_world import make_aws_world


def topology(world, url, private_range="192.168.1.4-192.168.1.10", mtu=1420, extra=""):
    text = f"""version: 1
sites:
  - {{name: private, provider: openstack}}
  - name: public
    provider: aws
    aws: {{region: eu-west-1, vpc: {world.vpc}, subnet: {world.subnet}, gateway_eni: {world.gateway_eni},
          endpoint_url: "{url}"}}
networks: [{{name: lab, cidr: 192.168.1.0/24}}]
pools:
  - {{network: lab, site: private, range: {private_range}}}
  - {{network: lab, site: public, range: 192.168.1.11-192.168.1.20}}
gateways:
  - {{name: private-gw, site: private, endpoint: "203.0.113.10:51820", lan_addresses: [192.168.1.253]}}
  - {{name: public-gw, site: public, endpoint: "198.51.100.20:51820", lan_addresses: [192.168.1.254]}}
connections: [{{network: lab, site_a: private, site_b: public, mtu: {mtu}}}]
{extra}"""
    return to_topology(parse_file(text))


def announce(topo, gateway, *ips):
    from cloudgw.model.topology import Announcement

    for ip in ips:
        topo.announcements[("lab", IPv4Address(ip), gateway)] = Announcement("lab", IPv4Address(ip), gateway)


def converge(provider, need, owned=None):
    owned = dict(owned or {})
    for _ in range(3):
        seen = provider.observe(need, owned)
        steps = provider.plan(need, seen)
        if not steps:
            return seen, owned
        for step in steps:
            provider.apply(step, seen)
        owned = seen.owned
    raise AssertionError(f"no convergence: {steps}")


def test_apply_owns_exactly_the_remote_endpoints_and_cleans_up(aws):
    world = make_aws_world(aws.ec2)
    topo = topology(world, aws.url)
    announce(topo, "private-gw", "192.168.1.5", "192.168.1.6")
    provider = provider_for(topo.sites["public"])
    need = need_for(topo, "public")
    _, owned = converge(provider, need)
    eni = world.eni()
    assert world.secondary() == {"192.168.1.5", "192.168.1.6"}
    assert eni["SourceDestCheck"] is False
    group = owned["security_group"]
    perms = aws.ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    assert sorted(
        (p["IpProtocol"], p["FromPort"], p["ToPort"], [r["CidrIp"] for r in p["IpRanges"]]) for p in perms
    ) == [
        ("icmp", 8, -1, ["203.0.113.10/32"]),  # echo requests: the agents' path MTU probes
        ("udp", 51820, 51820, ["203.0.113.10/32"]),
    ]
    assert group in [g["GroupId"] for g in eni["Groups"]] and world.gateway_group in [
        g["GroupId"] for g in eni["Groups"]
    ]
    mutations = sum(n for a, n in aws.calls.items() if a.startswith(("Assign", "Modify", "Create", "Authorize")))
    # a second pass changes nothing
    assert provider.plan(need, provider.observe(need, owned)) == []
    # a VM leaves the private side: its address leaves the ENI; one that arrives is added
    topo.announcements.pop(("lab", IPv4Address("192.168.1.6"), "private-gw"))
    announce(topo, "private-gw", "192.168.1.7")
    _, owned = converge(provider, need_for(topo, "public"), owned)
    assert world.secondary() == {"192.168.1.5", "192.168.1.7"} and mutations > 0
    # an address the admin put there by hand is never touched
    aws.ec2.assign_private_ip_addresses(NetworkInterfaceId=world.gateway_eni, PrivateIpAddresses=["192.168.1.100"])
    _, owned = converge(provider, Need.removal("public", "aws"), owned)
    eni = world.eni()
    assert world.secondary() == {"192.168.1.100"}
    assert eni["SourceDestCheck"] is True and [g["GroupId"] for g in eni["Groups"]] == [world.gateway_group]
    assert not aws.ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["cloudgw-public"]}])[
        "SecurityGroups"
    ]
    assert not [t for t in eni.get("TagSet", []) if t["Key"].startswith("cloudgw")]
    assert aws.refusals == []


def test_the_strict_layer_refuses_what_aws_refuses(aws):
    world = make_aws_world(aws.ec2, gateway_type="t3.micro")
    strict = aws.client()
    for address, words in (("192.168.1.1", "reserved"), ("192.168.1.255", "reserved"), ("10.0.0.5", "does not fall")):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            strict.assign_private_ip_addresses(NetworkInterfaceId=world.gateway_eni, PrivateIpAddresses=[address])
        assert words in str(caught.value)
    _vm, _ = world.launch_vm("192.168.1.30")
    with pytest.raises(botocore.exceptions.ClientError, match="in use"):
        strict.assign_private_ip_addresses(NetworkInterfaceId=world.gateway_eni, PrivateIpAddresses=["192.168.1.30"])
    with pytest.raises(botocore.exceptions.ClientError, match="PrivateIpAddressLimitExceeded"):
        strict.assign_private_ip_addresses(
            NetworkInterfaceId=world.gateway_eni, PrivateIpAddresses=["192.168.1.40", "192.168.1.41"]
        )
    assert world.secondary() == set()  # moto alone would have taken every one of them


def test_preflight_names_each_trap_and_its_fix(aws):
    world = make_aws_world(aws.ec2, gateway_type="t3.micro")
    # the proposal's own example: private VMs at .1-.10, two of them running; a t3.micro ENI
    topo = topology(world, aws.url, private_range="192.168.1.1-192.168.1.10")
    announce(topo, "private-gw", "192.168.1.5", "192.168.1.6")
    found = preflight_site(topo, "public", provider_for(topo.sites["public"]), {})
    by = {f.check: f for f in found}
    assert by["reserved"].severity == "error" and "192.168.1.1-192.168.1.3" in by["reserved"].message
    assert "start pool 'private-lab' at 192.168.1.4" in by["reserved"].fix
    assert by["eni-limit"].severity == "error" and "t3.micro" in by["eni-limit"].message
    assert "t3.small" in by["eni-limit"].fix
    assert by["source-dest-check"].severity == "change"
    assert by["tunnel-port"].severity == "change" and "203.0.113.10/32" in by["tunnel-port"].message
    # a network ACL that denies the tunnel port is the admin's to fix
    acl = aws.ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [world.subnet]}])
    acl_id = acl["NetworkAcls"][0]["NetworkAclId"]
    aws.ec2.create_network_acl_entry(
        NetworkAclId=acl_id,
        RuleNumber=10,
        Protocol="17",
        RuleAction="deny",
        Egress=False,
        CidrBlock="203.0.113.0/24",
        PortRange={"From": 51820, "To": 51820},
    )
    # a tunnel MTU the Internet path cannot carry
    topo = topology(world, aws.url, mtu=1460)
    found = preflight_site(topo, "public", provider_for(topo.sites["public"]), {})
    errors = {f.check: f for f in found if f.severity == "error"}
    assert "rule 10" in errors["tunnel-port"].message and "203.0.113.10/32" in errors["tunnel-port"].fix
    assert "1520-byte" in errors["mtu"].message and "mtu: 1440" in errors["mtu"].fix
    assert aws.calls["AssignPrivateIpAddresses"] == 0 and aws.calls["ModifyNetworkInterfaceAttribute"] == 0


def test_throttling_is_retried_not_half_applied(aws):
    world = make_aws_world(aws.ec2)
    topo = topology(world, aws.url)
    announce(topo, "private-gw", "192.168.1.5")
    aws.throttle = 2
    converge(provider_for(topo.sites["public"]), need_for(topo, "public"))
    assert world.secondary() == {"192.168.1.5"} and aws.throttle == 0


def test_acl_verdict_follows_rule_order():
    peer = IPv4Address("203.0.113.10")
    allow = {"RuleNumber": 100, "Protocol": "-1", "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"}
    deny = {
        "RuleNumber": 50,
        "Protocol": "17",
        "RuleAction": "deny",
        "CidrBlock": "203.0.113.0/24",
        "PortRange": {"From": 51820, "To": 51820},
    }
    assert acl_verdict([allow], peer, 51820) == "allow"
    assert acl_verdict([allow, deny], peer, 51820) == "50"
    assert acl_verdict([allow, deny], peer, 51821) == "allow"
    assert acl_verdict([], peer, 51820) == "default deny"


def test_a_missing_credential_is_a_clear_error_without_secrets(monkeypatch, aws):
    world = make_aws_world(aws.ec2)
    topo = topology(world, aws.url)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    provider = Aws("public", provider_for(topo.sites["public"]).cloud)
    found = preflight_site(topo, "public", provider, {})
    cloud = [f for f in found if f.check == "cloud"]
    assert cloud and cloud[0].severity == "error" and "no AWS credentials" in cloud[0].message


def test_an_ha_pair_moves_the_secondary_ips_with_the_role_never_onto_two_enis(aws):
    from dataclasses import replace

    world = make_aws_world(aws.ec2)
    second = aws.ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        InstanceType="m5.large",
        SubnetId=world.subnet,
        PrivateIpAddress="192.168.1.252",
        SecurityGroupIds=[world.gateway_group],
    )["Instances"][0]
    standby_eni = second["NetworkInterfaces"][0]["NetworkInterfaceId"]
    text = f"""version: 1
sites:
  - {{name: private, provider: openstack}}
  - name: public
    provider: aws
    aws: {{region: eu-west-1, vpc: {world.vpc}, subnet: {world.subnet}, gateway_eni: {world.gateway_eni},
          gateway: public-gw, standby: public-gw2, standby_eni: {standby_eni}, endpoint_url: "{aws.url}"}}
networks: [{{name: lab, cidr: 192.168.1.0/24}}]
pools:
  - {{network: lab, site: private, range: 192.168.1.4-192.168.1.10}}
  - {{network: lab, site: public, range: 192.168.1.11-192.168.1.20}}
gateways:
  - {{name: private-gw, site: private, endpoint: "203.0.113.10:51820", lan_addresses: [192.168.1.253]}}
  - {{name: public-gw, site: public, endpoint: "198.51.100.20:51820", lan_addresses: [192.168.1.254],
     priority: 200}}
  - {{name: public-gw2, site: public, endpoint: "198.51.100.21:51820", lan_addresses: [192.168.1.252]}}
connections: [{{network: lab, site_a: private, site_b: public}}]
"""
    topo = to_topology(parse_file(text))
    announce(topo, "private-gw", "192.168.1.5", "192.168.1.6")
    provider = provider_for(topo.sites["public"])

    def on_eni(eni):
        return {a["PrivateIpAddress"] for a in world.eni(eni)["PrivateIpAddresses"] if not a.get("Primary")}

    overlaps = []
    apply = provider.apply

    def checked(step, seen):
        apply(step, seen)
        overlaps.append(on_eni(world.gateway_eni) & on_eni(standby_eni))

    provider.apply = checked
    _, owned = converge(provider, need_for(topo, "public"))
    assert on_eni(world.gateway_eni) == {"192.168.1.5", "192.168.1.6"} and on_eni(standby_eni) == set()
    # the tunnels reach either gateway: the security group is on both ENIs
    group = owned["security_group"]
    assert all(group in [g["GroupId"] for g in world.eni(e)["Groups"]] for e in (world.gateway_eni, standby_eni))

    # public-gw2 takes the active role: the addresses move to its ENI
    topo.gateways["public-gw2"] = replace(topo.gateways["public-gw2"], role="active", role_epoch=1)
    topo.gateways["public-gw"] = replace(topo.gateways["public-gw"], role="standby", role_epoch=1)
    need = need_for(topo, "public")
    assert need.active == "public-gw2"
    plan = provider.plan(need, provider.observe(need, owned))
    kinds = [(s.kind, s.target) for s in plan]
    assert kinds.index(("unassign", world.gateway_eni)) < kinds.index(("assign", standby_eni))
    _, owned = converge(provider, need, owned)
    assert on_eni(standby_eni) == {"192.168.1.5", "192.168.1.6"} and on_eni(world.gateway_eni) == set()
    assert world.eni(standby_eni)["SourceDestCheck"] is False
    # and back
    topo.gateways["public-gw"] = replace(topo.gateways["public-gw"], role="active", role_epoch=2)
    topo.gateways["public-gw2"] = replace(topo.gateways["public-gw2"], role="standby", role_epoch=2)
    _, owned = converge(provider, need_for(topo, "public"), owned)
    assert on_eni(world.gateway_eni) == {"192.168.1.5", "192.168.1.6"} and on_eni(standby_eni) == set()
    assert not any(overlaps), overlaps  # never an address on two ENIs, after any single call
    assert aws.refusals == []
