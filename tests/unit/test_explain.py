"""Explain a path (pure): each way a path breaks is named at the right hop, with its fix."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

import pytest

from cloudgw.mapping.explain import GatewayReport, PeerSeen, explain
from cloudgw.model.topology import Announcement
from cloudgw.model.topologyfile import parse_file, to_topology
from tests.helpers import KEY_A, KEY_B, KEY_C

NOW = 1_000_000.0
FILE = """version: 1
sites: [{name: private}, {name: public}]
networks: [{name: lab, cidr: 192.168.1.0/24}]
pools:
  - {network: lab, site: private, range: 192.168.1.1-192.168.1.10}
  - {network: lab, site: public, range: 192.168.1.11-192.168.1.20}
gateways:
  - {name: private-gw, site: private, endpoint: "203.0.113.10:51820", lan_addresses: [192.168.1.254]}
  - {name: public-gw, site: public, endpoint: "203.0.113.20:51820", lan_addresses: [192.168.1.253]}
connections: [{network: lab, site_a: private, site_b: public}]
"""


def world():
    topo = to_topology(parse_file(FILE))
    topo.gateways["private-gw"] = replace(topo.gateways["private-gw"], public_key=KEY_A)
    topo.gateways["public-gw"] = replace(topo.gateways["public-gw"], public_key=KEY_B)
    for ip, gateway in (("192.168.1.1", "private-gw"), ("192.168.1.11", "public-gw")):
        topo.announcements[("lab", IPv4Address(ip), gateway)] = Announcement("lab", IPv4Address(ip), gateway)
    reports = {
        "private-gw": GatewayReport(
            "private-gw",
            True,
            3.0,
            7,
            7,
            (PeerSeen(KEY_B, NOW - 30, ("192.168.1.11/32",)),),
            path_mtu={"public-gw": 1408},
        ),
        "public-gw": GatewayReport("public-gw", True, 2.0, 7, 7, (PeerSeen(KEY_A, NOW - 30, ("192.168.1.1/32",)),)),
    }
    return topo, reports


def run(topo, reports, src="192.168.1.1", dst="192.168.1.11"):
    return explain(topo, reports, IPv4Address(src), IPv4Address(dst), None, NOW)


def by_hop(result):
    return {h.hop: h for h in result.hops}


def test_a_healthy_pair_is_ok_at_every_hop():
    result = run(*world())
    assert result.verdict == "ok" and result.network == "lab"
    assert [h.hop for h in result.hops] == [
        "network",
        "source",
        "destination",
        "connection",
        "gateway private-gw",
        "tunnel private-gw -> public-gw",
        "gateway public-gw",
        "tunnel public-gw -> private-gw (return)",
    ]
    assert "tunnel MTU 1408" in by_hop(result)["tunnel private-gw -> public-gw"].detail


def test_broken_on_purpose_each_at_its_hop():
    topo, reports = world()
    conn = topo.connections["private-public-lab"]
    topo.connections[conn.name] = replace(conn, enabled=False)
    hop = by_hop(run(topo, reports))["connection"]
    assert hop.state == "broken" and "--enable" in hop.fix

    topo, reports = world()
    hop = by_hop(run(topo, reports, dst="192.168.1.50"))["destination"]
    assert hop.state == "broken" and "outside every pool" in hop.detail

    topo, reports = world()  # the same address announced at both sites
    topo.announcements[("lab", IPv4Address("192.168.1.11"), "private-gw")] = Announcement(
        "lab", IPv4Address("192.168.1.11"), "private-gw"
    )
    hop = by_hop(run(topo, reports))["destination"]
    assert hop.state == "warning" and "several sites" in hop.detail and "renumber" in hop.fix

    topo, reports = world()  # the remote agent stopped
    reports["public-gw"] = replace(reports["public-gw"], online=False, seen_age_s=95.0)
    result = by_hop(run(topo, reports))
    assert result["gateway public-gw"].state == "broken" and "95 s old" in result["gateway public-gw"].detail
    assert result["tunnel public-gw -> private-gw (return)"].state == "unknown"

    topo, reports = world()  # public-gw made a new key; private-gw still holds the old one
    topo.gateways["public-gw"] = replace(topo.gateways["public-gw"], public_key=KEY_C)
    hop = by_hop(run(topo, reports))["tunnel private-gw -> public-gw"]
    assert hop.state == "broken" and "old key" in hop.detail

    topo, reports = world()  # a document not applied: the destination not in the allowed IPs
    reports["private-gw"] = replace(reports["private-gw"], peers=(PeerSeen(KEY_B, NOW - 30, ("192.168.1.12/32",)),))
    hop = by_hop(run(topo, reports))["tunnel private-gw -> public-gw"]
    assert hop.state == "broken" and "not in the allowed IPs" in hop.detail

    topo, reports = world()  # no handshake for ten minutes
    reports["private-gw"] = replace(reports["private-gw"], peers=(PeerSeen(KEY_B, NOW - 600, ("192.168.1.11/32",)),))
    hop = by_hop(run(topo, reports))["tunnel private-gw -> public-gw"]
    assert hop.state == "broken" and "600 s ago" in hop.detail and "UDP 51820" in hop.fix

    topo, reports = world()  # a WAN path MTU below the tunnel's
    reports["private-gw"] = replace(reports["private-gw"], path_warnings={"public-gw": "path carries 1400"})
    result = run(topo, reports)
    assert (
        result.verdict == "warning" and by_hop(result)["tunnel private-gw -> public-gw"].detail == "path carries 1400"
    )


@pytest.mark.parametrize(
    ("src", "dst", "words"),
    [
        ("192.168.1.1", "10.0.0.1", "no network holds both"),
        ("192.168.1.5", "192.168.1.11", "no gateway has seen it"),
    ],
)
def test_addresses_that_go_nowhere(src, dst, words):
    result = run(*world(), src=src, dst=dst)
    assert result.verdict == "broken" and any(words in h.detail for h in result.hops)


def test_same_site_is_not_cloudgws_path():
    topo, reports = world()
    topo.announcements[("lab", IPv4Address("192.168.1.2"), "private-gw")] = Announcement(
        "lab", IPv4Address("192.168.1.2"), "private-gw"
    )
    result = run(topo, reports, dst="192.168.1.2")
    assert result.verdict == "ok" and by_hop(result)["path"].detail.startswith("both at site 'private'")


def test_kernel_answers_name_what_is_missing():
    from cloudgw.mapping.explain import kernel_hops

    target = IPv4Address("192.168.1.11")
    good = {
        "public_key": KEY_A,
        "route": {"dst": "192.168.1.11/32", "dev": "cgw0"},
        "proxy_arp": True,
        "peer_present": True,
        "peer_allows_target": True,
        "counters": {"lan_spoofed": 3},
        "probe": {"sizes": [84, 1420], "answered": [84, 1420]},
    }
    (ok,) = kernel_hops("private-gw", target, good, {"lan_spoofed": 3}, "cgw0", KEY_A, ms=12.5)
    assert ok.state == "ok" and ok.ms == 12.5 and "answered through the tunnel" in ok.detail

    hops = kernel_hops("private-gw", target, {**good, "route": None, "proxy_arp": False}, {}, "cgw0", KEY_A)
    assert [h.state for h in hops][:2] == ["broken", "broken"]
    assert "no route for 192.168.1.11" in hops[0].detail and "does not answer ARP" in hops[1].detail
    hops = kernel_hops("private-gw", target, {**good, "public_key": KEY_B}, {"lan_spoofed": 3}, "cgw0", KEY_A)
    assert hops[0].state == "broken" and "one side changed its key" in hops[0].detail
    hops = kernel_hops("private-gw", target, good, {"lan_spoofed": 1}, "cgw0", KEY_A)
    assert any(h.state == "warning" and "dropped 2 packets" in h.detail and "lan_spoofed" in h.detail for h in hops)
    small = {**good, "probe": {"sizes": [84, 1420], "answered": [84]}}
    hops = kernel_hops("private-gw", target, small, {"lan_spoofed": 3}, "cgw0", KEY_A)
    assert hops[0].state == "broken" and "carries less than the tunnel MTU" in hops[0].detail and "--mtu" in hops[0].fix
    (silent,) = kernel_hops("private-gw", target, None, {}, "cgw0", KEY_A)
    assert silent.state == "unknown" and "did not answer" in silent.detail
