"""HA pairs in the lab (`--scenario ha`): a pair of gateways at each site, failures cut like power
cuts (`cloudgw lab fail`), real ping and iperf3 across the stretched subnet. Every test leaves both
gateways of each pair running."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from cloudgw.lab import lab as lablib
from cloudgw.lab.controlplane import lab_client
from cloudgw.lab.measure import ping_outage, pinger, roles
from tests.helpers import RUN_TAG, run, wait_for
from tests.lab.conftest import Lab, running_lab

PAIRS = {"private": ("private-gw", "private-gw2"), "public": ("public-gw", "public-gw2")}
GATEWAYS = [g for pair in PAIRS.values() for g in pair]
INTERVAL = 0.01  # ping every 10 ms


@pytest.fixture(scope="module")
def ha_lab() -> Iterator[Lab]:
    with running_lab(f"cgwh{RUN_TAG}", "ha") as lab:
        yield lab


def api_roles(lab: Lab) -> dict[str, str | None]:
    with lab_client(lab.paths) as client:
        return {g["name"]: g["role"] for g in client.list("gateways")}


def active_of(lab: Lab, site: str) -> tuple[str, str]:
    """(active, standby) of a site's pair, as both agents say and the controller records."""
    pair = PAIRS[site]

    def settled() -> tuple[str, str] | None:
        seen = roles(lab.paths, list(pair))
        if sorted(seen.values(), key=str) != ["active", "standby"]:
            return None
        active = next(name for name, role in seen.items() if role == "active")
        recorded = api_roles(lab)
        if recorded[active] != "active":
            return None
        return active, next(name for name in pair if name != active)

    return wait_for(settled, 30, interval=0.1, what=f"one active gateway at {site}")


def heal_all(lab: Lab) -> None:
    failed = (lab.paths.read_record() or {}).get("failed", {})
    for node in failed:
        lablib.heal_gateway(lab.paths, node)
    if lablib.supervisor_pid(lab.paths) is not None:
        lablib.set_service_enabled(lab.paths, "controller", True)
    for site in PAIRS:
        active_of(lab, site)
    # every tunnel works again, both gateways of each pair included
    for here in GATEWAYS:
        for there in GATEWAYS:
            if here.split("-")[0] != there.split("-")[0]:
                address = {"private-gw": "192.168.1.254", "private-gw2": "192.168.1.252"}.get(there) or {
                    "public-gw": "192.168.1.253",
                    "public-gw2": "192.168.1.251",
                }[there]
                wait_for(
                    lambda h=here, a=address: (
                        run(["ping", "-c", "1", "-W", "1", a], netns=lab.ns(h), check=False).returncode == 0
                    ),
                    30,
                    what=f"tunnel {here} -> {there}",
                )


def ping_during(lab: Lab, action, source: str = "private-vm2", address: str = "192.168.1.12", seconds: float = 8.0):
    process = pinger(lab.paths, source, address, INTERVAL, seconds)
    time.sleep(1.5)  # a stretch of answered pings before the action (the measured window needs it)
    try:
        action()
    finally:
        output, _ = process.communicate(timeout=seconds + 30)
    return ping_outage(output, INTERVAL)


def proxy_entries(lab: Lab, gateway: str) -> str:
    return run(["ip", "neigh", "show", "proxy"], netns=lab.ns(gateway)).stdout.strip()


def test_both_pairs_have_one_active_gateway_and_the_standby_answers_no_arp(ha_lab):
    for site in PAIRS:
        active, standby = active_of(ha_lab, site)
        # a role is reported when it is taken, and the data plane follows at the agent's next
        # reconcile: a gateway that was active a moment ago (a failback at start) still answers
        # ARP until then (seen once in CI, the standby's entries gone a moment later)
        wait_for(lambda a=active: proxy_entries(ha_lab, a), 10, what=f"{active} (active) to answer ARP")
        wait_for(lambda s=standby: proxy_entries(ha_lab, s) == "", 10, what=f"{standby} (standby) to stop")
        assert active_of(ha_lab, site) == (active, standby)  # and the roles did not move meanwhile
    # VMs reach each other through the active gateways
    run(["ping", "-c", "3", "-i", "0.2", "-W", "2", "192.168.1.11"], netns=ha_lab.ns("private-vm1"))
    # `lab status` shows all four gateways with their roles
    status = json.loads(ha_lab.cli("status", "-o", "json").stdout)
    shown = {g["node"]: g["role"] for g in status["gateways"]}
    assert set(shown) == set(GATEWAYS) and sorted(shown.values()) == ["active", "active", "standby", "standby"]


def test_active_killed_fails_over_in_under_3s_and_tcp_survives(ha_lab):
    active, standby = active_of(ha_lab, "private")
    server = subprocess.Popen(
        ["ip", "netns", "exec", ha_lab.ns("public-vm11"), "iperf3", "-s", "-1", "-p", "5321"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    report: dict = {}

    def transfer() -> None:
        result = run(
            ["iperf3", "-c", "192.168.1.11", "-p", "5321", "-t", "8", "-i", "1", "-J", "-b", "50M"],
            netns=ha_lab.ns("private-vm1"),
            check=False,
            timeout=60,
        )
        report.update(json.loads(result.stdout or "{}"))

    try:
        wait_for(lambda: ":5321" in run(["ss", "-ltn"], netns=ha_lab.ns("public-vm11")).stdout, 10, what="iperf3")
        client = threading.Thread(target=transfer)
        client.start()
        outage = ping_during(ha_lab, lambda: lablib.fail_gateway(ha_lab.paths, active))
        client.join(timeout=60)
        print(f"\nfailover {active} -> {standby}: {outage}")
        assert outage.window_s < 3.0, outage
        assert outage.answered > outage.sent / 2
        assert "error" not in report, report.get("error")
        intervals = [i["sum"]["bytes"] for i in report["intervals"]]
        assert len(intervals) >= 8 and intervals[-1] > 0 and intervals[-2] > 0, intervals  # it kept going
        wait_for(
            lambda: roles(ha_lab.paths, [standby])[standby] == "active" and api_roles(ha_lab)[standby] == "active",
            20,
            what=f"{standby} active, as it says and the controller records",
        )
        with lab_client(ha_lab.paths) as client_api:
            gateway = client_api.get("gateways", standby)
        assert "no hello from" in gateway["role_reason"], gateway["role_reason"]
    finally:
        server.kill()
        server.wait(timeout=10)
        heal_all(ha_lab)
    # the killed gateway is back, as standby: no failback unless the site asks for it
    assert roles(ha_lab.paths, [active])[active] == "standby"
    with lab_client(ha_lab.paths) as client_api:
        audit = client_api.json("GET", "/api/v1/audit", params={"limit": 100})["items"]
        metrics = client_api.request("GET", "/metrics").text
    changes = [a for a in audit if a["action"] == "role" and a["name"] == standby]
    assert changes and changes[0]["after"]["role"] == "active" and changes[0]["after"]["reason"]
    assert f'cloudgw_gateway_active{{gateway="{standby}",site="private"}} 1.0' in metrics
    assert 'cloudgw_role_changes_total{role="active"}' in metrics


def test_the_virtual_address_moves_and_the_vms_reach_the_internet_after_failover(ha_lab):
    """The VMs' default gateway is the pair's virtual address: it moves with the role (gratuitous
    ARP), and Internet traffic leaves through the new active gateway's NAPT. Its sessions are new:
    without connection-tracking sync, a TCP connection to the Internet does not survive (docs/ha.md)."""
    active, standby = active_of(ha_lab, "private")

    def holds(node: str) -> bool:
        return "192.168.1.250/24" in run(["ip", "-4", "addr", "show", "dev", "lan0"], netns=ha_lab.ns(node)).stdout

    assert holds(active) and not holds(standby)
    try:
        outage = ping_during(
            ha_lab, lambda: lablib.fail_gateway(ha_lab.paths, active), source="private-vm3", address="198.51.100.10"
        )
        print(f"\nInternet via the virtual address, failover {active} -> {standby}: {outage}")
        assert outage.window_s < 3.0, outage
        assert holds(standby)
    finally:
        heal_all(ha_lab)
    wait_for(lambda: not holds(active), 10, what="the healed gateway (standby) not holding the virtual address")


def test_the_active_losing_its_wan_hands_over_to_the_standby(ha_lab):
    """Not a dead machine: the active gateway's WAN link fails while its LAN is fine. Its WireGuard
    sessions still look alive for minutes; the probes through the tunnel say at once that it reaches
    no peer, and the standby, which does, takes over."""
    active, standby = active_of(ha_lab, "private")
    port = "site0" if active == "private-gw" else "site0s1"  # its link on the `wan` router
    router = ha_lab.ns("wan")
    try:
        outage = ping_during(ha_lab, lambda: run(["ip", "link", "set", port, "down"], netns=router), seconds=10)
        print(f"\nWAN of {active} lost, {standby} took over: {outage}")
        assert outage.window_s < 4.0, outage
        seen = roles(ha_lab.paths, [active, standby])
        assert seen == {active: "standby", standby: "active"}, seen
        reason = lablib.gateway_status(ha_lab.paths, standby)["ha"]["reason"]
        assert "no live tunnel" in reason or "no hello" in reason, reason
    finally:
        run(["ip", "link", "set", port, "up"], netns=router)
        heal_all(ha_lab)


def test_killing_the_standby_loses_nothing(ha_lab):
    _active, standby = active_of(ha_lab, "public")
    try:
        outage = ping_during(ha_lab, lambda: lablib.fail_gateway(ha_lab.paths, standby), seconds=5)
        print(f"\nstandby {standby} killed: {outage}")
        assert outage.lost == 0 and outage.window_s == 0.0, outage
    finally:
        heal_all(ha_lab)


def test_failover_with_the_controller_down(ha_lab):
    active, standby = active_of(ha_lab, "public")
    lablib.set_service_enabled(ha_lab.paths, "controller", False)
    try:
        outage = ping_during(ha_lab, lambda: lablib.fail_gateway(ha_lab.paths, active))
        print(f"\ncontroller down, failover {active} -> {standby}: {outage}")
        assert outage.window_s < 3.0, outage
        assert roles(ha_lab.paths, [standby])[standby] == "active"
        lablib.set_service_enabled(ha_lab.paths, "controller", True)
        # the controller learns the role the pair chose while it was away
        wait_for(lambda: api_roles(ha_lab)[standby] == "active", 30, interval=0.2, what="the role recorded")
    finally:
        heal_all(ha_lab)


def _watch_roles(lab: Lab, pair: tuple[str, str], seconds: float) -> list[dict[str, str | None]]:
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(roles(lab.paths, list(pair)))
        time.sleep(0.1)  # the sampling period the issue asks for, not a synchronisation
    return samples


def test_lan_link_cut_between_the_pair_never_makes_two_active(ha_lab):
    active, standby = active_of(ha_lab, "private")
    port = "gw1" if standby == "private-gw2" else "gw"
    switch = ha_lab.ns("private-lan")
    run(["ip", "link", "set", port, "down"], netns=switch)
    try:
        samples = _watch_roles(ha_lab, PAIRS["private"], 5.0)
        both = [s for s in samples if list(s.values()).count("active") > 1]
        assert not both, both[:3]
        assert all(s[active] == "active" for s in samples)
        status = lablib.gateway_status(ha_lab.paths, standby)
        partner = status["ha"]["partners"][0]
        assert partner["paths"] == ["wan"] and partner["heard_s_ago"] < 1.0, partner  # heard over the WAN only
    finally:
        run(["ip", "link", "set", port, "up"], netns=switch)
        heal_all(ha_lab)


def test_no_hello_on_any_path_the_controller_keeps_one_active(ha_lab):
    """The pair cannot hear each other at all (hellos dropped on both paths) but both reach the
    controller: its lease keeps the standby from taking over."""
    active, standby = active_of(ha_lab, "private")
    ns = ha_lab.ns(standby)
    rules = (
        "table inet cgwtest {\n chain input {\n  type filter hook input priority -10;\n  udp dport 51821 drop\n }\n}\n"
    )
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, text=True, check=True)
    try:
        wait_for(
            lambda: (
                (lablib.gateway_status(ha_lab.paths, standby) or {}).get("ha", {}).get("reason", "").find("holds") >= 0
            ),
            20,
            what="the standby's claim refused by the controller",
        )
        samples = _watch_roles(ha_lab, PAIRS["private"], 3.0)
        assert not [s for s in samples if list(s.values()).count("active") > 1]
        assert all(s[active] == "active" for s in samples)
    finally:
        subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "cgwtest"], check=False)
        heal_all(ha_lab)
