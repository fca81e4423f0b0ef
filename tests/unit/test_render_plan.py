"""render (document -> kernel objects) and plan (diff), pure and table-driven."""

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest

from cloudgw.dataplane.kernelstate import KernelState, ProxyNeighbour, Route, Secret
from cloudgw.dataplane.plan import ORDER, plan, summary
from cloudgw.dataplane.render import peer_allowed_ips, render
from cloudgw.model.document import load_document
from tests.helpers import KEY_A, KEY_B, sample_document

N = IPv4Network


def doc(**overrides):
    return load_document(sample_document(**overrides))


def test_render_l3_objects():
    state = render(doc(), KEY_A)
    assert set(state.links) == {"cgw0"} and state.links["cgw0"].mtu == 1420
    assert state.devices["cgw0"].listen_port == 51820
    peer = state.peers[("cgw0", KEY_B)]
    assert peer.endpoint == "203.0.113.20:51820"
    # allowed-ips: site b's pool + its gateway's LAN address; never anything of site a
    assert [str(n) for n in peer.allowed_ips] == [
        "192.168.1.11/32",
        "192.168.1.12/30",
        "192.168.1.16/30",
        "192.168.1.20/32",
        "192.168.1.253/32",
    ]
    assert state.neighbours == {
        ProxyNeighbour(IPv4Address("192.168.1.11"), "lan0"),
        ProxyNeighbour(IPv4Address("192.168.1.12"), "lan0"),
        ProxyNeighbour(IPv4Address("192.168.1.253"), "lan0"),  # the peer gateway's LAN address: VMs reach it
    }
    assert state.routes[(254, N("192.168.1.11/32"))] == Route(
        N("192.168.1.11/32"), "cgw0", IPv4Address("192.168.1.254")
    )
    assert (254, N("192.168.1.16/30")) in state.routes  # pool prefix route
    assert state.routes[(254, N("192.168.1.253/32"))].src == IPv4Address("192.168.1.254")
    assert state.sysctls["net/ipv4/ip_forward"] == "1"
    assert state.sysctls["net/ipv4/neigh/lan0/proxy_delay"] == "0"  # no random delay on proxy ARP
    assert state.nft is not None and ("from-lan0", "lan-spoof lan0") in state.nft.rule_ids


def test_private_key_never_shows_in_repr():
    state = render(doc(), KEY_A)
    assert KEY_A not in repr(state)
    assert KEY_A not in repr(state.devices["cgw0"])
    assert repr(Secret("x")) == "Secret(<redacted>)"


def test_render_is_deterministic():
    assert render(doc(), KEY_A) == render(doc(), KEY_A)
    assert render(doc(), KEY_A).nft.fingerprint == render(doc(), KEY_A).nft.fingerprint


def test_fingerprint_changes_with_pools():
    other = doc(**{"networks.0.pools.0.range": "192.168.1.1-192.168.1.9"})
    assert render(other, KEY_A).nft.fingerprint != render(doc(), KEY_A).nft.fingerprint


def test_allowed_ips_three_sites_are_disjoint():
    data = sample_document()
    data["networks"][0]["pools"].append({"site": "c", "range": "192.168.1.21-192.168.1.30"})
    data["peers"].append({"name": "gw-c", "site": "c", "public_key": "A" * 43 + "="})
    allowed = peer_allowed_ips(load_document(data))
    b = {a for n in allowed["gw-b"] for a in n}
    c = {a for n in allowed["gw-c"] for a in n}
    assert not b & c
    assert IPv4Address("192.168.1.25") in c and IPv4Address("192.168.1.15") in b


def test_plan_from_nothing_follows_the_safe_order():
    actions = plan(KernelState(), render(doc(), KEY_A))
    kinds = [a.kind for a in actions]
    assert all(a.op == "add" or a.kind == "sysctl" for a in actions)
    order = [ORDER.index(k) for k in kinds]
    assert order == sorted(order), kinds
    assert kinds.index("nft") < kinds.index("peer") < kinds.index("route")


def test_plan_same_state_is_empty():
    state = render(doc(), KEY_A)
    assert plan(state, state) == []


def test_plan_prunes_owned_objects_no_longer_wanted():
    wanted = render(doc(), KEY_A)
    stale_route = Route(N("192.168.1.99/32"), "cgw0")
    stale_neigh = ProxyNeighbour(IPv4Address("192.168.1.99"), "lan0")
    observed = replace(
        wanted, routes={**wanted.routes, stale_route.dst: stale_route}, neighbours=wanted.neighbours | {stale_neigh}
    )
    actions = plan(observed, wanted)
    assert [(a.op, a.kind) for a in actions] == [("delete", "route"), ("delete", "neighbour")]
    assert summary(actions) == {"adds": 0, "changes": 0, "dels": 2}


def test_plan_deletes_run_in_reverse_order_before_adds():
    wanted = render(doc(), KEY_A)
    actions = plan(wanted, KernelState())
    kinds = [a.kind for a in actions]
    assert kinds.index("route") < kinds.index("neighbour") < kinds.index("peer") < kinds.index("link")
    assert "sysctl" not in kinds  # sysctls are set, never removed


def test_plan_changes_a_moved_endpoint_route():
    wanted = render(doc(), KEY_A)
    moved = Route(N("192.168.1.11/32"), "cgw9", None)
    observed = replace(wanted, routes={**wanted.routes, moved.key: moved})
    actions = plan(observed, wanted)
    assert [(a.op, a.kind, a.key) for a in actions] == [("change", "route", "192.168.1.11/32")]


def test_roamed_endpoint_is_not_a_difference_when_none_configured():
    wanted = render(doc(**{"peers.0.endpoint": None}), KEY_A)
    key = ("cgw0", KEY_B)
    roamed = replace(wanted.peers[key], endpoint="198.51.100.7:40000")
    observed = replace(wanted, peers={key: roamed})
    assert plan(observed, wanted) == []


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"gateway.tunnel": {"mtu": 1380}}, ["link"]),
        ({"gateway.tunnel": {"listen_port": 51821}}, ["device", "nft"]),  # the WAN input rule opens the port
        ({"peers.0.endpoint": "203.0.113.21:51820"}, ["peer"]),
        ({"networks.0.pools.0.range": "192.168.1.1-192.168.1.9"}, ["nft"]),
    ],
    ids=["mtu", "port", "endpoint", "local-pool"],
)
def test_one_field_change_gives_one_change(change, kind):
    before = render(doc(), KEY_A)
    data = sample_document()
    for path, value in change.items():
        if path == "gateway.tunnel":
            data["gateway"]["tunnel"] = value
        else:
            parts = path.split(".")
            target = data
            for part in parts[:-1]:
                target = target[int(part)] if isinstance(target, list) else target[part]
            target[parts[-1]] = value
    after = render(load_document(data), KEY_A)
    actions = plan(before, after)
    assert sorted(a.kind for a in actions) == sorted(kind) and {a.op for a in actions} == {"change"}


def test_egress_via_peer_routes_the_pool_through_the_tunnel():
    state = render(doc(**{"networks.0.egress": "via", "networks.0.egress_via": "gw-b"}), KEY_A)
    from cloudgw.dataplane.kernelstate import PolicyRule

    assert PolicyRule(20700, 254, suppress_prefixlength=0) in state.rules
    assert PolicyRule(20701, 207, src=N("192.168.1.8/31")) in state.rules
    assert state.routes[(207, N("0.0.0.0/0"))].dev == "cgw0"
    assert N("0.0.0.0/0") in state.peers[("cgw0", KEY_B)].allowed_ips
    assert (
        ("forward", "egress-via") in state.nft.rule_ids
        and ("from-lan0", "egress-via") in state.nft.rule_ids
        and ("postrouting", "napt") not in state.nft.rule_ids
    )


def test_transit_pools_are_masqueraded_here():
    state = render(doc(**{"networks.0.transit": ["192.168.1.11-192.168.1.20"]}), KEY_A)
    napt = next(c for c in state.nft.commands if c.get("add", {}).get("rule", {}).get("comment") == "napt")
    sources = napt["add"]["rule"]["expr"][1]["match"]["right"]["set"]
    # the transit range is masqueraded (joined with the adjacent local pool .1-.10 into one range)
    spans = [[IPv4Address(a) for a in item["range"]] for item in sources if "range" in item]
    assert any(first <= IPv4Address("192.168.1.11") and IPv4Address("192.168.1.20") <= last for first, last in spans)


def test_egress_none_has_no_masquerade():
    state = render(doc(**{"networks.0.egress": "none"}), KEY_A)
    assert (
        ("forward", "egress-none") in state.nft.rule_ids
        and ("from-lan0", "egress-none") in state.nft.rule_ids
        and ("postrouting", "napt") not in state.nft.rule_ids
    )
    assert not state.rules
