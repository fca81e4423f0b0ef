"""NAPT and egress end to end: real curl, a real HTTP server and UDP echo on the Internet host."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cloudgw.lab import controlplane
from cloudgw.lab.measure import wait_applied
from tests.helpers import run, wait_for
from tests.lab.test_seed import REPO

pytestmark = [pytest.mark.root, pytest.mark.lab]
INTERNET = "198.51.100.10"


@pytest.fixture
def api(seed_lab):
    with controlplane.lab_client(seed_lab.paths) as client:
        yield client


def fetch(lab, node: str, url: str = f"http://{INTERNET}/", timeout: float = 3) -> str | None:
    result = run(["curl", "-s", "-m", str(timeout), url], netns=lab.ns(node), check=False)
    return result.stdout if result.returncode == 0 else None


def seen_as(lab, node: str) -> str | None:
    page = fetch(lab, node)
    return page.split("you are ")[1].strip() if page else None


def udp_echo(lab, node: str) -> str:
    code = (
        "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); "
        f"s.sendto(b'hi', ('{INTERNET}', 7)); print(s.recv(100).decode())"
    )
    return run([sys.executable, "-c", code], netns=lab.ns(node)).stdout


def test_local_egress_leaves_through_each_sites_own_gateway(seed_lab):
    assert seen_as(seed_lab, "private-vm1") == "203.0.113.10"
    assert seen_as(seed_lab, "private-vm7") == "203.0.113.10"
    assert seen_as(seed_lab, "public-vm11") == "203.0.113.20"
    assert udp_echo(seed_lab, "public-vm15").startswith("you are 203.0.113.20:")


def test_egress_via_private_gives_the_public_cloud_a_fixed_source(seed_lab, api):
    try:
        api.create("egress", {"site": "public", "network": "lab", "mode": "via", "via": "private"})
        wait_applied(api)
        assert wait_for(lambda: seen_as(seed_lab, "public-vm11") == "203.0.113.10", 10, what="egress via private")
        assert udp_echo(seed_lab, "public-vm12").startswith("you are 203.0.113.10:")
        assert seen_as(seed_lab, "private-vm1") == "203.0.113.10"  # the private cloud is unchanged
        assert run(["ping", "-c", "1", "-W", "2", "192.168.1.1"], netns=seed_lab.ns("public-vm11")).returncode == 0
    finally:
        api.delete("egress", "public-lab")
        wait_applied(api)
    assert wait_for(lambda: seen_as(seed_lab, "public-vm11") == "203.0.113.20", 10, what="egress local again")


def test_egress_none_cuts_the_internet_but_not_the_other_cloud(seed_lab, api):
    try:
        api.create("egress", {"site": "public", "network": "lab", "mode": "none"})
        wait_applied(api)
        assert fetch(seed_lab, "public-vm13", timeout=2) is None
        assert run(["ping", "-c", "1", "-W", "2", "192.168.1.1"], netns=seed_lab.ns("public-vm13")).returncode == 0
    finally:
        api.delete("egress", "public-lab")
        wait_applied(api)


def test_forward_opens_a_vms_service_and_deleting_it_closes_it(seed_lab, api):
    server = subprocess.Popen(
        ["ip", "netns", "exec", seed_lab.ns("public-vm14"), sys.executable, "-m", "http.server", "80"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: ":80 " in run(["ss", "-ltn"], netns=seed_lab.ns("public-vm14")).stdout, 10, what="a server")
        url = "http://203.0.113.20:8080/"
        assert fetch(seed_lab, "internet", url, timeout=2) is None
        api.create(
            "forwards",
            {
                "name": "web",
                "gateway": "public-gw",
                "public_port": 8080,
                "target_ip": "192.168.1.14",
                "target_port": 80,
            },
        )
        wait_applied(api)
        assert wait_for(lambda: fetch(seed_lab, "internet", url), 10, what="the forward to open")
        sessions = wait_for(
            lambda: [
                s
                for s in api.json("GET", "/api/v1/nat/sessions", params={"site": "public"})["gateways"][0]["sessions"]
                if s["kind"] == "dnat"
            ],
            15,
            what="a dnat session",
        )
        assert sessions[0]["translated"].startswith("192.168.1.14:80")
        api.delete("forwards", "web")
        wait_applied(api)
        assert fetch(seed_lab, "internet", url, timeout=2) is None
    finally:
        server.terminate()
        server.wait(timeout=10)


def scan(lab, node: str, kind: str, host: str, first: int, last: int) -> dict[str, str]:
    out = run(
        [sys.executable, "-m", "tests.lab.scan", kind, host, str(first), str(last), "0.5"],
        netns=lab.ns(node),
        cwd=REPO,
        timeout=120,
    ).stdout
    return json.loads(out)


def test_a_scan_from_the_internet_reaches_nothing(seed_lab):
    server = subprocess.Popen(
        ["ip", "netns", "exec", seed_lab.ns("public-vm16"), sys.executable, "-m", "http.server", "80"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    routes = [
        ("wan", "192.168.1.0/28", "10.100.0.2"),
        ("wan", "192.168.1.16/28", "10.101.0.2"),
        ("internet", "192.168.1.0/24", "198.51.100.1"),
    ]
    try:
        wait_for(lambda: ":80 " in run(["ss", "-ltn"], netns=seed_lab.ns("public-vm16")).stdout, 10, what="a server")
        # an attacker who can route the VMs' private addresses to the gateways' WAN side
        for node, prefix, via in routes:
            run(["ip", "route", "add", prefix, "via", via], netns=seed_lab.ns(node))
        for vm in ("192.168.1.16", "192.168.1.1"):
            assert scan(seed_lab, "internet", "tcp", vm, 20, 90) == {}
            assert scan(seed_lab, "internet", "udp", vm, 1, 10) == {}
        for gateway in ("203.0.113.10", "203.0.113.20"):
            answered = scan(seed_lab, "internet", "tcp", gateway, 1, 1100)
            assert set(answered) <= {"22"} and "open" not in answered.values(), answered  # ssh may refuse, no more
            assert scan(seed_lab, "internet", "udp", gateway, 51810, 51830) == {}
    finally:
        for node, prefix, via in routes:
            run(["ip", "route", "del", prefix, "via", via], netns=seed_lab.ns(node), check=False)
        server.terminate()
        server.wait(timeout=10)


def _reconciles(lab, gateway: str) -> int:
    status = json.loads((lab.paths.node_dir(gateway) / "run" / "status.json").read_text())
    return int(status["reconciles"])


def _rulesets(lab) -> list[str]:
    return [run(["nft", "-s", "-a", "list", "ruleset"], netns=lab.ns(gw)).stdout for gw in ("private-gw", "public-gw")]


def test_bad_rules_are_refused_and_the_running_ruleset_is_unchanged(seed_lab, api):
    before_rules, before_revision = _rulesets(seed_lab), api.status()["revision"]
    bad = [
        (
            "forwards",
            {"name": "x", "gateway": "public-gw", "public_port": 70000, "target_ip": "192.168.1.11", "target_port": 80},
            422,
        ),
        (
            "forwards",
            {"name": "x", "gateway": "public-gw", "public_port": 8080, "target_ip": "192.168.1.3", "target_port": 80},
            422,
        ),
        ("egress", {"site": "public", "network": "lab", "mode": "via", "via": "nowhere"}, 422),
    ]
    api.create(
        "forwards",
        {"name": "keep", "gateway": "public-gw", "public_port": 9090, "target_ip": "192.168.1.11", "target_port": 80},
    )
    wait_applied(api)
    try:
        before_rules, before_revision = _rulesets(seed_lab), api.status()["revision"]
        bad.append(
            (
                "forwards",
                {
                    "name": "dup",
                    "gateway": "public-gw",
                    "public_port": 9090,
                    "target_ip": "192.168.1.12",
                    "target_port": 80,
                },
                409,
            )
        )
        reconciles = {gw: _reconciles(seed_lab, gw) for gw in ("private-gw", "public-gw")}
        for kind, body, status in bad:
            response = api._http.post(f"/api/v1/{kind}", json=body)
            assert response.status_code == status, (body, response.text)
        for gateway, count in reconciles.items():  # each agent has reconciled again since
            wait_for(lambda g=gateway, c=count: _reconciles(seed_lab, g) > c, 15, what=f"{gateway} to reconcile")
        assert api.status()["revision"] == before_revision
        assert _rulesets(seed_lab) == before_rules
    finally:
        api.delete("forwards", "keep")
        wait_applied(api)


def test_sessions_are_visible(seed_lab, api):
    assert fetch(seed_lab, "private-vm2")
    found = wait_for(
        lambda: [
            s
            for s in api.json("GET", "/api/v1/nat/sessions", params={"site": "private"})["gateways"][0]["sessions"]
            if s["source"].startswith("192.168.1.2:")
        ],
        15,
        what="the session in a heartbeat",
    )
    assert found[0]["destination"] == f"{INTERNET}:80" and found[0]["translated"].startswith("10.100.0.2:")
    assert api.get("gateways", "private-gw")["nat_sessions"] >= 1
