"""The real-network scenario: a 1450-byte private LAN behind a bridged gateway (bridge netfilter on)
and a 1400-byte WAN at the public site, with nothing tuned by hand. The defaults must find the path
MTU (no black hole for TCP, UDP or DF pings), keep NAPT and the stateful filter working whether or
not bridge netfilter is active, and bring the tunnels up without the controller connection stalling."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cloudgw.lab import controlplane
from tests.helpers import RUN_TAG, run, wait_for
from tests.lab.conftest import running_lab
from tests.lab.test_seed import REPO

pytestmark = [pytest.mark.root, pytest.mark.lab]


@pytest.fixture(scope="module")
def rough_lab():
    with running_lab(f"cgwr{RUN_TAG}", "real-network") as lab:
        yield lab


def route_mtu(lab, node: str, address: str) -> str:
    return run(["ip", "route", "show", address], netns=lab.ns(node)).stdout


def test_each_gateway_routes_with_the_mtu_its_path_carries(rough_lab):
    # public-gw sees its own 1400-byte WAN; private-gw has a 1500-byte WAN and must find the 1400-byte
    # hop by probing. 1400 - 60 (WireGuard over IPv4) = 1340, rounded down to WireGuard's 16: 1328
    wait_for(lambda: "mtu 1328" in route_mtu(rough_lab, "private-gw", "192.168.1.11"), 20, what="probed MTU")
    wait_for(lambda: "mtu 1328" in route_mtu(rough_lab, "public-gw", "192.168.1.1"), 20, what="WAN MTU")
    assert "mtu 1500" in run(["ip", "link", "show", "wan0"], netns=rough_lab.ns("private-gw")).stdout


def test_the_controller_shows_the_path_and_the_warning(rough_lab):
    with controlplane.lab_client(rough_lab.paths) as api:

        def tunnels():
            gateways = {g["name"]: g for g in api.list("gateways")}
            found = gateways["private-gw"]["tunnels"]
            return found if found and found[0].get("path_mtu") == 1400 else None

        tunnel = wait_for(tunnels, 30, what="path MTU in a heartbeat")[0]
        assert tunnel["mtu"] == 1328 and tunnel["mtu_source"] == "probe"
        assert "does not fit the path" in tunnel["mtu_warning"] and "1328" in tunnel["mtu_warning"]
        metrics = api.request("GET", "/metrics").text
    assert 'cloudgw_peer_path_mtu_bytes{gateway="private-gw",peer="public-gw"} 1400.0' in metrics
    assert 'cloudgw_peer_mtu_lowered{gateway="private-gw",peer="public-gw"} 1.0' in metrics


def test_explain_names_the_wan_path_below_the_tunnel_mtu(rough_lab):
    """A WAN path MTU below the connection's: explain warns at the tunnel hop, and the probe through
    the tunnel at the MTU the gateway lowered to is answered (nothing is lost, nothing to fix by hand)."""
    seen: list[dict] = []

    def explained() -> dict | None:
        # explain reports the live state: a probe lost under load or a heartbeat not yet sent makes a
        # hop broken for a moment (once in CI); what must hold is the warning once that has passed
        with controlplane.lab_client(rough_lab.paths) as api:
            result = api.json("POST", "/api/v1/explain", json={"src": "192.168.1.1", "dst": "192.168.1.11"})
        seen.append(result)
        return result if result["verdict"] == "warning" else None

    try:
        result = wait_for(explained, 30, interval=0.5, what="explain's verdict to be the path warning")
    except AssertionError as timed_out:
        last = seen[-1] if seen else {"verdict": None, "hops": []}
        hops = [(h["hop"], h["state"], h.get("detail")) for h in last["hops"]]
        raise AssertionError(f"explain never warned; its last answer: {last['verdict']}, {hops}") from timed_out
    hops = {h["hop"]: h for h in result["hops"]}
    tunnel = hops["tunnel private-gw -> public-gw"]
    assert tunnel["state"] == "warning", result
    assert "does not fit the path" in tunnel["detail"]
    assert hops["kernel private-gw"]["state"] == "ok" and "1328" in hops["kernel private-gw"]["detail"]


def iperf(lab, server: str, client: str, address: str, port: int, *extra: str) -> dict:
    process = subprocess.Popen(
        ["ip", "netns", "exec", lab.ns(server), "iperf3", "-s", "-1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: f":{port}" in run(["ss", "-ltn"], netns=lab.ns(server)).stdout, 10, what="iperf3 server")
        result = run(["iperf3", "-c", address, "-p", str(port), "-J", *extra], netns=lab.ns(client), timeout=90)
        return json.loads(result.stdout)
    finally:
        process.wait(timeout=30)


@pytest.mark.parametrize(
    ("server", "client", "address"),
    [("public-vm11", "private-vm1", "192.168.1.11"), ("private-vm1", "public-vm11", "192.168.1.1")],
    ids=["private-to-public", "public-to-private"],
)
def test_bulk_tcp_crosses_the_1400_byte_wan_with_defaults(rough_lab, server, client, address):
    report = iperf(rough_lab, server, client, address, 5311, "-n", "40M")
    received = report["end"]["sum_received"]["bytes"]
    print(f"\n{client} -> {address}: {report['end']['sum_received']['bits_per_second'] / 1e6:.0f} Mbit/s")
    assert received >= 30_000_000  # of ~42 MB sent; a black hole moves (almost) nothing: 97 retransmits
    assert report["start"]["tcp_mss_default"] <= 1328 - 40


def test_ping_sizes_with_df_are_delivered_or_refused_never_lost(rough_lab):
    outcomes = {}
    for size in range(1260, 1480, 12):
        result = run(
            ["ping", "-M", "do", "-s", str(size), "-c", "1", "-W", "2", "192.168.1.11"],
            netns=rough_lab.ns("private-vm1"),
            check=False,
        )
        text = result.stdout + result.stderr
        if " bytes from 192.168.1.11" in text:
            outcomes[size] = "delivered"
        elif "Frag needed" in text or "message too long" in text:
            outcomes[size] = "fragneeded"
        else:
            outcomes[size] = "lost"
    assert "lost" not in outcomes.values(), outcomes
    assert outcomes[1296] == "delivered" and outcomes[1440] == "fragneeded"  # 1296 + 28 = 1324 <= 1328


def test_udp_datagrams_near_the_limit_are_delivered_or_refused_never_lost(rough_lab):
    server = rough_lab.ns("public-vm11")
    echo = subprocess.Popen(
        ["ip", "netns", "exec", server, sys.executable, "-m", "tests.lab.udp", "echo", "7311", "60"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert echo.stdout.readline().strip() == "ready"
        sizes = [1200, 1280, 1300, 1312, 1328, 1360, 1372, 1400, 1422]
        sweep = run(
            [sys.executable, "-m", "tests.lab.udp", "sweep", "192.168.1.11", "7311", *map(str, sizes)],
            netns=rough_lab.ns("private-vm1"),
            cwd=REPO,
            timeout=60,
        )
    finally:
        echo.terminate()
        echo.wait(timeout=10)
    outcomes = dict(line.split() for line in sweep.stdout.splitlines())
    assert "lost" not in outcomes.values(), outcomes
    assert outcomes["1200"] == "delivered" and outcomes["1300"] == "delivered"  # 1300 + 28 = 1328
    assert outcomes["1422"] == "fragneeded"


def set_bridge_netfilter(lab, on: bool) -> None:
    run(["sysctl", "-q", "-w", f"net.bridge.bridge-nf-call-iptables={int(on)}"], netns=lab.ns("private-gw"))


@pytest.mark.parametrize("bridge_netfilter", [True, False], ids=["br-netfilter-on", "br-netfilter-off"])
def test_napt_and_the_stateful_filter_on_a_bridged_lan(rough_lab, bridge_netfilter):
    set_bridge_netfilter(rough_lab, bridge_netfilter)
    try:
        page = run(["curl", "-s", "-m", "5", "http://198.51.100.10/"], netns=rough_lab.ns("private-vm1")).stdout
        assert "you are 203.0.113.10" in page  # masqueraded behind the private gateway's public address
        # unsolicited from the Internet: the VM's address is not routable, and the gateway's public
        # address forwards nothing (no port forward configured)
        probe = run(["curl", "-s", "-m", "2", "http://203.0.113.10:22/"], netns=rough_lab.ns("internet"), check=False)
        assert probe.returncode != 0
        ping = run(["ping", "-c", "1", "-W", "2", "192.168.1.11"], netns=rough_lab.ns("private-vm1"), check=False)
        assert ping.returncode == 0
    finally:
        set_bridge_netfilter(rough_lab, True)


def test_a_vm_reaches_the_other_sites_gateway_lan_address(rough_lab):
    assert run(["ping", "-c", "1", "-W", "2", "192.168.1.253"], netns=rough_lab.ns("private-vm1")).returncode == 0


def test_the_saved_ruleset_loads_back(rough_lab, tmp_path):
    listing = run(["nft", "list", "ruleset"], netns=rough_lab.ns("private-gw")).stdout
    assert "table inet cloudgw" in listing
    saved = tmp_path / "ruleset.nft"
    saved.write_text(listing)
    checked = run(["nft", "-c", "-f", str(saved)], netns=rough_lab.ns("private-gw"), check=False)
    assert checked.returncode == 0, checked.stderr


def test_agents_never_lost_their_controller_connection(rough_lab):
    rules = run(["nft", "list", "chain", "inet", "cloudgw", "input"], netns=rough_lab.ns("private-gw")).stdout
    assert 'ip saddr 198.51.101.10 tcp sport 8443 accept comment "wan-control 198.51.101.10:8443"' in rules
    for gateway in ("private-gw", "public-gw"):
        log = (rough_lab.paths.logs / f"{gateway}.log").read_text()
        assert "controller.connected" in log
        assert "controller.lost" not in log, log
