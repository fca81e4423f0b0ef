"""Tunnel MTU per peer from the path (pure): pathmtu.peer_mtu, render's route MTUs, the endpoint
fast path, and the echo probe's packet format."""

from ipaddress import IPv4Address, IPv4Network

import pytest

from cloudgw.agent.pathprobe import echo_request, parse_reply
from cloudgw.dataplane.delta import endpoint_delta
from cloudgw.dataplane.pathmtu import PathFacts, peer_mtu
from cloudgw.dataplane.render import LocalFacts, render, route_mtus
from cloudgw.model.document import load_document
from tests.helpers import KEY_A, sample_document


@pytest.mark.parametrize(
    ("configured", "facts", "mtu", "source", "warns"),
    [
        (1420, PathFacts(), 1420, "configured", False),
        (1420, PathFacts(wan_mtu=1500), 1420, "wan", False),
        (1420, PathFacts(wan_mtu=1400), 1328, "wan", True),  # 1340 rounded down to WireGuard's padding
        (1420, PathFacts(wan_mtu=1500, probed=1400), 1328, "probe", True),
        (1420, PathFacts(wan_mtu=1400, probed=1500), 1328, "probe", True),  # never above our own link
        (1300, PathFacts(wan_mtu=1400), 1300, "wan", False),  # a smaller configured MTU is kept
        (1420, PathFacts(wan_mtu=1450), 1376, "wan", True),  # an OpenStack VXLAN tenant network
        (1420, PathFacts(wan_mtu=1300), 1280, "wan", True),  # floor: IPv6 needs 1280
    ],
    ids=["unknown", "wan-1500", "wan-1400", "probe-1400", "wan-caps-probe", "configured-small", "vxlan", "floor"],
)
def test_peer_mtu(configured, facts, mtu, source, warns):
    result = peer_mtu(configured, facts)
    assert (result.mtu, result.source, result.warning is not None) == (mtu, source, warns)
    if warns:
        assert str(result.mtu) in result.warning or "raise the WAN MTU" in result.warning


def doc(**overrides):
    return load_document(sample_document(**overrides))


def test_routes_carry_the_peer_mtu_only_when_lower_than_the_device():
    d = doc()
    assert route_mtus(d, LocalFacts()) == {"gw-b": None}
    state = render(d, KEY_A, local=LocalFacts(peer_mtu={"gw-b": 1340}))
    tunnel_routes = [r for r in state.routes.values() if r.dev == "cgw0"]
    assert tunnel_routes and all(r.mtu == 1340 for r in tunnel_routes)
    assert state.links["cgw0"].mtu == 1420  # the device keeps the largest
    default = render(d, KEY_A)
    assert all(r.mtu is None for r in default.routes.values())


def test_the_connection_mtu_per_peer_is_honoured():
    data = sample_document()
    data["peers"][0]["mtu"] = 1380
    state = render(load_document(data), KEY_A, local=LocalFacts(peer_mtu={"gw-b": 1400}))
    assert {r.mtu for r in state.routes.values() if r.dev == "cgw0"} == {1380}


def test_endpoint_fast_path_gives_new_routes_the_peer_mtu():
    old = doc()
    data = sample_document()
    data["networks"][0]["remote_endpoints"].append({"ip": "192.168.1.13", "gateway": "gw-b"})
    new = load_document(data)
    local = LocalFacts(peer_mtu={"gw-b": 1340})
    state = render(old, KEY_A, local=local)
    actions, after = endpoint_delta(old, new, state, route_mtus(new, local))
    assert after.routes[(254, IPv4Network("192.168.1.13/32"))].mtu == 1340
    assert after == render(new, KEY_A, local=local)  # the fast path equals the slow path
    assert [a.kind for a in actions] == ["neighbour", "route"]


def test_control_connection_is_exempt_on_the_wan_input():
    state = render(doc(), KEY_A, local=LocalFacts(control=((IPv4Address("198.51.101.10"), 8443),)))
    assert ("input", "wan-control 198.51.101.10:8443") in state.nft.rule_ids
    ids = [rule for rule in state.nft.rule_ids if rule[0] == "input"]
    assert ids.index(("input", "wan-control 198.51.101.10:8443")) < ids.index(("input", "wan-input"))


def test_no_chain_is_named_after_an_nft_keyword():
    state = render(doc(), KEY_A)
    chains = {cmd["add"]["chain"]["name"] for cmd in state.nft.commands if "chain" in cmd.get("add", {})}
    assert chains.isdisjoint({"meta", "fwd", "ct", "ip", "tcp", "udp", "counter"})


def test_echo_request_is_the_asked_size_and_reply_parses():
    packet = echo_request(0x1234, 1400, 1400)
    assert len(packet) + 20 == 1400  # ICMP part; the kernel adds the 20-byte IP header
    reply_ip = bytes([0x45, 0, 0x05, 0x78]) + bytes(8) + bytes([203, 0, 113, 20]) + bytes(4)
    reply = reply_ip + bytes([0, 0, 0, 0]) + (0x1234).to_bytes(2, "big") + (1400).to_bytes(2, "big") + packet[8:]
    assert parse_reply(reply) == ("203.0.113.20", 0x1234, 1400, 1400)
    assert parse_reply(reply_ip + bytes([8, 0, 0, 0, 0, 0, 0, 0])) is None  # a request, not a reply
