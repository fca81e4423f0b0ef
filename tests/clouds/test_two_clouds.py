"""The proposal's scenario from empty clouds: `cloudgw apply -f` of a topology whose private site is
an OpenStack cloud (the fake) and whose public site is an AWS VPC (moto behind the strict layer).
The controller's provider reconciler prepares both clouds; two gateways (the real agent and watch
feed, with the in-memory data plane) announce what their clouds list."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloudgw.agent.agent import Agent
from cloudgw.agent.keys import generate_private_key, public_key_of
from cloudgw.agent.link import ControllerLink, ControllerSource, Reporter
from cloudgw.agent.reconcile import Reconciler
from cloudgw.dataplane.fake import FakeDataplane
from tests.clouds.aws_world import make_aws_world
from tests.clouds.moto_strict import CREDENTIALS
from tests.clouds.openstack_fake import PASSWORD, make_openstack_world
from tests.controllers import start_controller
from tests.helpers import wait_for

SECRETS = (CREDENTIALS["aws_secret_access_key"], PASSWORD)


class CloudGateway:
    """A gateway as its agent runs it, minus the kernel: joins, applies documents, announces."""

    def __init__(self, name: str, url: str, workdir: Path, token: str, endpoint: str, answers: bool = True) -> None:
        private = generate_private_key()
        self.link = ControllerLink(url, workdir / name, join_token=token, endpoint=endpoint)
        self.link.join(public_key_of(private))
        self.source = ControllerSource(self.link, workdir / name / "document.json", wait=5)
        self.dataplane = FakeDataplane(interfaces=("eth0", "eth1"))
        self.agent = Agent(
            source=self.source,
            reconciler=Reconciler(self.dataplane, private, resolver=lambda e: e),
            interval=3600,
            poll=3600,
        )
        self.reporter = Reporter(self.link, self.agent.heartbeat, self.agent.endpoints_by_network, interval=2)
        self.agent.on_applied = self.reporter.wake
        self.source.on_change = self.agent.step
        if answers:  # the controller's questions (explain), as the daemon wires them
            self.source.on_question = self.agent.answer_path
        self.source.start()
        self.reporter.start()

    def stop(self) -> None:
        self.source.stop()
        self.reporter.stop()


def topology(aws_world, aws_url: str, os_world) -> str:
    return f"""version: 1
sites:
  - name: private
    provider: openstack
    openstack: {{cloud: private-cloud, subnet: tenant-subnet, gateway_port: {os_world["port"]["id"]}}}
  - name: public
    provider: aws
    aws: {{region: eu-west-1, vpc: {aws_world.vpc}, subnet: {aws_world.subnet}, gateway_eni: {aws_world.gateway_eni},
          endpoint_url: "{aws_url}"}}
networks: [{{name: lab, cidr: 192.168.1.0/24}}]
pools:
  - {{network: lab, site: private, range: 192.168.1.4-192.168.1.10}}
  - {{network: lab, site: public, range: 192.168.1.11-192.168.1.20}}
gateways:
  - {{name: private-gw, site: private, endpoint: "203.0.113.10:51820", lan_addresses: [192.168.1.253]}}
  - {{name: public-gw, site: public, endpoint: "198.51.100.20:51820", lan_addresses: [192.168.1.254]}}
connections: [{{network: lab, site_a: private, site_b: public, mtu: 1380}}]
"""


@pytest.fixture
def world(aws, openstack_cloud, tmp_path, caplog):
    caplog.set_level("DEBUG")
    aws_world = make_aws_world(aws.ec2)
    os_world = make_openstack_world(openstack_cloud)
    for ip in ("192.168.1.5", "192.168.1.6"):  # two private VMs that were running before cloudgw
        openstack_cloud.add(
            "ports",
            name=f"vm-{ip}",
            network_id=os_world["network"]["id"],
            device_owner="compute:nova",
            fixed_ips=[{"subnet_id": os_world["subnet"]["id"], "ip_address": ip}],
        )
    controller = start_controller(tmp_path / "controller", f"sqlite:///{tmp_path}/c.db", provider_interval=1)
    env = {
        **os.environ,
        "CLOUDGW_URL": controller.url,
        "CLOUDGW_TOKEN": controller.admin_token,
        "CLOUDGW_CA": controller.ca,
        "CLOUDGW_CONFIG": str(tmp_path / "cli.yaml"),
        "COLUMNS": "200",
    }
    gateways: list[CloudGateway] = []
    yield {
        "aws": aws,
        "aws_world": aws_world,
        "os": openstack_cloud,
        "os_world": os_world,
        "controller": controller,
        "env": env,
        "gateways": gateways,
        "tmp": tmp_path,
    }
    for gateway in gateways:
        gateway.stop()
    controller.stop()


def cloudgw(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloudgw", *args], env=env, capture_output=True, text=True, timeout=120
    )


def join(world, name: str, endpoint: str) -> None:
    with world["controller"].client() as admin:
        token = admin.create("tokens", {"name": f"join-{name}", "role": "join", "gateway": name})["token"]
    world["gateways"].append(CloudGateway(name, world["controller"].url, world["tmp"] / "gw", token, endpoint))


def test_apply_from_empty_clouds_makes_one_subnet(world, caplog):
    aws, aws_world, fake, os_world = world["aws"], world["aws_world"], world["os"], world["os_world"]
    path = world["tmp"] / "topology.yaml"
    path.write_text(topology(aws_world, aws.url, os_world))
    applied = cloudgw(world["env"], "apply", "-f", str(path), "--yes")
    assert applied.returncode == 0, applied.stderr
    assert "preflight:" in applied.stdout and "change(s) cloudgw will make" in applied.stdout
    join(world, "private-gw", "203.0.113.10:51820")
    join(world, "public-gw", "198.51.100.20:51820")

    # AWS: the gateway ENI holds exactly the private site's VMs, check off, tunnel port for the peer
    wait_for(lambda: aws_world.secondary() == {"192.168.1.5", "192.168.1.6"}, 30, what="the private VMs on the ENI")
    eni = aws_world.eni()
    assert eni["SourceDestCheck"] is False
    groups = aws.ec2.describe_security_groups(Filters=[{"Name": "tag:cloudgw:site", "Values": ["public"]}])
    (group,) = groups["SecurityGroups"]
    perms = group["IpPermissions"]
    assert sorted((p["IpProtocol"], p["FromPort"], [r["CidrIp"] for r in p["IpRanges"]]) for p in perms) == [
        ("icmp", 8, ["203.0.113.10/32"]),
        ("udp", 51820, ["203.0.113.10/32"]),
    ]
    # OpenStack: the gateway port may answer for the public pool; Nova will not hand it out
    port = fake.get("ports", os_world["port"]["id"])
    pairs = {p["ip_address"] for p in port["allowed_address_pairs"]}
    assert pairs == {"192.168.1.11/32", "192.168.1.12/30", "192.168.1.16/30", "192.168.1.20/32"}
    assert fake.get("subnets", os_world["subnet"]["id"])["allocation_pools"] == [
        {"start": "192.168.1.2", "end": "192.168.1.10"},
        {"start": "192.168.1.21", "end": "192.168.1.254"},
    ]

    admin = world["controller"].client()
    # a VM launched in the VPC, that never sends a packet, is in the mapping through the provider
    started = time.monotonic()
    _vm, _ = aws_world.launch_vm("192.168.1.15")
    wait_for(lambda: admin.resolve("lab", "192.168.1.15")["state"] == "effective", 30, what="the AWS VM in the mapping")
    print(f"AWS VM to effective mapping: {time.monotonic() - started:.1f} s")
    # a VM added on the private side appears on the AWS ENI; removed, it leaves it
    started = time.monotonic()
    vm = fake.add(
        "ports",
        name="vm7",
        network_id=os_world["network"]["id"],
        device_owner="compute:nova",
        fixed_ips=[{"subnet_id": os_world["subnet"]["id"], "ip_address": "192.168.1.7"}],
    )
    wait_for(lambda: "192.168.1.7" in aws_world.secondary(), 30, what="the new private VM on the AWS ENI")
    print(f"OpenStack VM to AWS secondary IP: {time.monotonic() - started:.1f} s")
    fake.data["ports"].pop(vm["id"])
    wait_for(lambda: "192.168.1.7" not in aws_world.secondary(), 30, what="the removed VM to leave the ENI")

    # a second apply changes nothing, in the topology or in the clouds
    def settled():
        rows = admin.json("GET", "/api/v1/providers")
        return rows if {p["site"]: p["state"] for p in rows} == {"private": "ok", "public": "ok"} else None

    providers = wait_for(settled, 30, what="both clouds ok")
    # the list pages in headers (its body stays the bare list of v0.1)
    first = admin.request("GET", "/api/v1/providers", params={"limit": 1})
    assert [p["site"] for p in first.json()] == ["private"] and first.headers["X-Total-Count"] == "2"
    following = first.headers["Link"].split(">")[0].lstrip("<")
    assert [p["site"] for p in admin.json("GET", following)] == ["public"]
    mutations = sum(n for a, n in aws.calls.items() if not a.startswith("Describe"))
    writes = len([r for r in fake.requests if r[0] != "GET" and "auth/tokens" not in r[1]])
    again = cloudgw(world["env"], "apply", "-f", str(path), "--yes")
    assert again.returncode == 0 and "nothing to change" in again.stdout, again.stdout + again.stderr
    passes = world["controller"].server.config.app.state.cloudsync.passes  # type: ignore[attr-defined]
    wait_for(lambda: world["controller"].server.config.app.state.cloudsync.passes >= passes + 2, 20, what="two passes")  # type: ignore[attr-defined]
    assert sum(n for a, n in aws.calls.items() if not a.startswith("Describe")) == mutations
    assert len([r for r in fake.requests if r[0] != "GET" and "auth/tokens" not in r[1]]) == writes

    # status, metrics, audit, export, documents and the UI never show a credential
    seen = [
        cloudgw(world["env"], "status", "-o", "json").stdout,
        cloudgw(world["env"], "export").stdout,
        cloudgw(world["env"], "audit", "--limit", "200", "-o", "json").stdout,
        admin.request("GET", "/metrics").text,
        admin.request("GET", "/").text,
        str(admin.document("public-gw")),
        str(admin.document("private-gw")),
        str(providers),
    ]
    assert "secondary_ips" in seen[0] and "public" in seen[1]
    assert 'cloudgw_provider_state{provider="aws",site="public",state="ok"} 1.0' in seen[3]
    assert 'cloudgw_provider_cloud_objects{kind="secondary_ips",site="public"} 2.0' in seen[3]
    table = cloudgw(world["env"], "status").stdout
    assert "clouds" in table and "openstack" in table and "aws" in table
    for text in seen:
        for secret in SECRETS:
            assert secret not in text

    # deleting the public site removes what cloudgw created in AWS, and nothing else
    deleted = cloudgw(world["env"], "site", "delete", "public", "--cascade", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    wait_for(lambda: aws_world.secondary() == set(), 30, what="the ENI's secondary IPs to go")
    wait_for(lambda: aws_world.eni()["SourceDestCheck"] is True, 30, what="the check to come back on")
    wait_for(
        lambda: [g["GroupId"] for g in aws_world.eni()["Groups"]] == [aws_world.gateway_group],
        30,
        what="only the admin's own group on the ENI",
    )
    wait_for(
        lambda: (
            not aws.ec2.describe_security_groups(Filters=[{"Name": "tag:cloudgw:site", "Values": ["public"]}])[
                "SecurityGroups"
            ]
        ),
        30,
        what="the owned security group to go",
    )
    assert aws.ec2.describe_instances(InstanceIds=[aws_world.gateway_instance])["Reservations"]  # the VMs stay
    assert aws.refusals == []
    # and the private side no longer opens anything for a public pool that is gone
    wait_for(lambda: fake.get("ports", os_world["port"]["id"])["allowed_address_pairs"] == [], 30, what="pairs gone")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "providers.step" in logged  # the reconciler's log was captured, at every level
    assert all(secret not in logged for secret in SECRETS)


def test_preflight_refuses_the_proposals_own_example_and_changes_nothing(world):
    aws, aws_world, fake, os_world = world["aws"], world["aws_world"], world["os"], world["os_world"]
    path = world["tmp"] / "topology.yaml"
    path.write_text(
        topology(aws_world, aws.url, os_world).replace("192.168.1.4-192.168.1.10", "192.168.1.1-192.168.1.10")
    )
    checked = cloudgw(world["env"], "preflight", "-f", str(path))
    assert checked.returncode == 1
    assert "192.168.1.1-192.168.1.3" in checked.stdout and "start pool 'private-lab' at 192.168.1.4" in checked.stdout
    refused = cloudgw(world["env"], "apply", "-f", str(path), "--yes")
    assert refused.returncode == 1 and "preflight" in refused.stderr
    with world["controller"].client() as admin:
        assert admin.list("sites") == []
    assert sum(n for a, n in aws.calls.items() if not a.startswith("Describe")) == 0
    assert [r for r in fake.requests if r[0] != "GET" and "auth/tokens" not in r[1]] == []
