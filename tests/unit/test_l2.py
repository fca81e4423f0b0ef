"""The L2 mode, pure parts: documents, rendering, the plan, and the backend boundary."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest

from cloudgw.agent.learn import LearnTarget, probe_order
from cloudgw.dataplane.delta import endpoint_delta
from cloudgw.dataplane.kernelstate import BridgeArp, FdbEntry, KernelState, ProxyNeighbour
from cloudgw.dataplane.modes import l2, l3, mode_of
from cloudgw.dataplane.plan import plan
from cloudgw.dataplane.render import LocalFacts, render
from cloudgw.errors import InvalidInput
from cloudgw.mapping.documents import l2_blocker, render_document
from cloudgw.mapping.index import TopologyIndex
from cloudgw.mapping.resolve import resolve, validate_source
from cloudgw.mapping.scope import candidates
from cloudgw.model.addr import AddressRange
from cloudgw.model.document import GatewayDocument, load_document, vni_of
from cloudgw.model.topology import Announcement, Connection, Gateway, Network, Pool, Site, Topology
from cloudgw.providers.checks import l2_networks
from tests.helpers import KEY_A, KEY_B, KEY_C, sample_document

PRIVATE = "0" * 43 + "="
VNI = vni_of("net1")


def l2_doc(flood: bool = False, with_c: bool = False) -> GatewayDocument:
    data = sample_document()
    net = data["networks"][0]
    net.update(mode="l2", flood=flood, vni=VNI, l2_sites=["b"])
    net["lan_interface"] = "br-lan"
    net["remote_endpoints"][0]["mac"] = "02:00:00:00:00:11"
    if with_c:  # a third site that stays L3 (AWS) in the same network
        net["pools"].append({"site": "c", "range": "192.168.1.21-192.168.1.30"})
        net["remote_endpoints"].append({"ip": "192.168.1.21", "gateway": "gw-c", "mac": "02:00:00:00:00:21"})
        data["peers"].append(
            {"name": "gw-c", "site": "c", "public_key": KEY_C, "endpoint": "203.0.113.30:51820", "lan_addresses": []}
        )
    return GatewayDocument.model_validate(data)


def test_the_mode_of_a_network_picks_its_backend() -> None:
    doc = l2_doc()
    assert mode_of(doc.networks[0]) is l2.render_network
    assert mode_of(GatewayDocument.model_validate(sample_document()).networks[0]) is l3.render_network


def test_l2_renders_a_vxlan_port_forwarding_and_arp_entries_and_no_routes_to_l2_sites() -> None:
    state = render(l2_doc(), PRIVATE)
    name = f"cgwvx{VNI}"
    vx = state.vxlans[name]
    assert (vx.vni, vx.local, vx.bridge, vx.mtu, vx.flood) == (VNI, IPv4Address("192.168.1.254"), "br-lan", 1370, False)
    peer = IPv4Address("192.168.1.253")
    assert state.fdb == {
        FdbEntry(name, "02:00:00:00:00:11", peer),
        FdbEntry(name, "02:00:00:00:00:11", None),
        FdbEntry(name, "02:00:00:00:00:12", peer),
        FdbEntry(name, "02:00:00:00:00:12", None),
    }
    assert state.arp == {
        BridgeArp(IPv4Address("192.168.1.11"), "02:00:00:00:00:11", "br-lan"),
        BridgeArp(IPv4Address("192.168.1.12"), "02:00:00:00:00:12", "br-lan"),
    }
    # the remote pool and VMs are on the bridge: no routes or proxy ARP for them, only the peer's
    # own LAN address (the VXLAN endpoint) is routed into the tunnel
    assert set(state.routes) == {(254, IPv4Network("192.168.1.253/32"))}
    assert state.neighbours == {ProxyNeighbour(IPv4Address("192.168.1.253"), "br-lan")}
    ids = [comment for _chain, comment in state.nft.rule_ids]
    assert f"l2-mac {name} b" in ids and f"l2-group {name}" in ids and "l2-bridged br-lan" in ids
    commands = [c for c in state.nft.commands if "add" in c and "rule" in c["add"]]
    bridge = [c["add"]["rule"]["comment"] for c in commands if c["add"]["rule"]["family"] == "bridge"]
    assert bridge[:2] == [f"l2-mss-out {name}", f"l2-mss-in {name}"]


def test_flood_adds_head_end_replication_and_opens_group_frames() -> None:
    state = render(l2_doc(flood=True), PRIVATE)
    name = f"cgwvx{VNI}"
    assert FdbEntry(name, "00:00:00:00:00:00", IPv4Address("192.168.1.253")) in state.fdb
    assert state.vxlans[name].flood
    assert f"l2-group {name}" not in [comment for _chain, comment in state.nft.rule_ids]


def test_a_site_that_cannot_bridge_is_routed_inside_the_l2_network() -> None:
    state = render(l2_doc(with_c=True), PRIVATE)
    assert (254, IPv4Network("192.168.1.21/32")) in state.routes
    assert ProxyNeighbour(IPv4Address("192.168.1.21"), "br-lan") in state.neighbours
    assert not [e for e in state.fdb if e.mac == "02:00:00:00:00:21"]
    assert (254, IPv4Network("192.168.1.24/30")) in state.routes  # c's pool, not b's
    assert not [key for key in state.routes if key[1].subnet_of(IPv4Network("192.168.1.8/29"))]


def test_the_mtu_budget_follows_the_narrowest_path() -> None:
    state = render(l2_doc(), PRIVATE, local=LocalFacts(peer_mtu={"gw-b": 1340}))
    assert state.vxlans[f"cgwvx{VNI}"].mtu == 1290
    mss = [c for c in state.nft.commands if "add" in c and "rule" in c["add"]]
    clamp = next(c for c in mss if c["add"]["rule"]["comment"].startswith("l2-mss-out"))
    assert clamp["add"]["rule"]["expr"][-1]["mangle"]["value"] == 1250


def test_a_rebuilt_vxlan_port_gets_its_entries_again() -> None:
    desired = render(l2_doc(), PRIVATE)
    name = f"cgwvx{VNI}"
    old = KernelState(vxlans={name: replace(desired.vxlans[name], flood=True)}, fdb=desired.fdb)
    actions = plan(old, desired)
    kinds = [(a.op, a.kind) for a in actions]
    assert ("change", "vxlan") in kinds
    assert sum(1 for a in actions if a.kind == "fdb" and a.op == "add") == len(desired.fdb)


def test_endpoint_changes_of_an_l2_network_take_the_full_render() -> None:
    doc = l2_doc()
    changed = doc.model_copy(update={"networks": [doc.networks[0].model_copy(update={"remote_endpoints": []})]})
    assert endpoint_delta(doc, changed, render(doc, PRIVATE)) is None


def test_a_document_refuses_l2_networks_sharing_a_vni_and_unknown_l2_sites() -> None:
    data = l2_doc().model_dump(mode="json")
    second = dict(data["networks"][0], name="net2", cidr="10.0.0.0/24", lan_address="10.0.0.254", pools=[])
    second["remote_endpoints"] = []
    data["networks"].append(second)
    data["networks"][0]["l2_sites"] = ["b", "zz"]
    with pytest.raises(InvalidInput) as caught:
        load_document(data)
    fields = {p.field for p in caught.value.problems}
    assert "networks[1].vni" in fields and "networks[0].l2_sites" in fields


def topology(provider_b: str = "openstack", pair: bool = False) -> Topology:
    topo = Topology()
    topo.sites["a"] = Site("a", "openstack")
    topo.sites["b"] = Site("b", provider_b)
    topo.networks["net1"] = Network("net1", IPv4Network("192.168.1.0/24"), "l2", flood=True)
    topo.pools["a-net1"] = Pool("a-net1", "net1", "a", AddressRange.parse("192.168.1.1-192.168.1.10"))
    topo.pools["b-net1"] = Pool("b-net1", "net1", "b", AddressRange.parse("192.168.1.11-192.168.1.20"))
    lan = (IPv4Address("192.168.1.254"),)
    topo.gateways["gw-a"] = Gateway("gw-a", "a", "203.0.113.10:51820", KEY_A, "wan0", "br-lan", lan)
    topo.gateways["gw-b"] = Gateway(
        "gw-b", "b", "203.0.113.20:51820", KEY_B, "wan0", "br-lan", (IPv4Address("192.168.1.253"),)
    )
    if pair:
        topo.gateways["gw-b2"] = Gateway(
            "gw-b2", "b", "203.0.113.21:51820", KEY_C, "wan0", "br-lan", (IPv4Address("192.168.1.252"),)
        )
    topo.connections["a-b"] = Connection("a-b", "net1", "a", "b")
    return topo


def test_documents_carry_the_l2_mode_where_both_sites_can_bridge() -> None:
    net = render_document(topology(), "gw-a", 1).networks[0]
    assert (net.mode, net.flood, net.vni, net.l2_sites) == ("l2", True, vni_of("net1"), ["b"])


@pytest.mark.parametrize(("provider", "pair", "why"), [("aws", False, "AWS"), ("openstack", True, "HA pair")])
def test_a_site_that_cannot_bridge_stays_l3(provider: str, pair: bool, why: str) -> None:
    topo = topology(provider, pair)
    assert why in (l2_blocker(topo, "b") or "")
    net_a = render_document(topo, "gw-a", 1).networks[0]
    assert net_a.mode == "l2" and net_a.l2_sites == []  # a bridges its LAN; b is routed to
    assert render_document(topo, "gw-b", 1).networks[0].mode == "l3"


def announce(topo: Topology, gateway: str, ip: str, mac: str, first_seen: float) -> None:
    address = IPv4Address(ip)
    topo.announcements[("net1", address, gateway)] = Announcement("net1", address, gateway, mac, first_seen, first_seen)


def test_a_vm_that_moved_is_effective_where_it_was_seen_last_with_the_same_mac() -> None:
    topo = topology()
    announce(topo, "gw-a", "192.168.1.3", "02:00:00:00:00:03", 100.0)
    announce(topo, "gw-b", "192.168.1.3", "02:00:00:00:00:03", 200.0)  # moved to b: newer, same MAC
    index = TopologyIndex.build(topo)
    assert [e.gateway for e in index.remote_endpoints("net1", "b")] == ["gw-b"]
    assert index.remote_endpoints("net1", "a") == []
    assert resolve(topo, "net1", IPv4Address("192.168.1.3")).site == "b"
    # gw-a's document lists it behind gw-b, and the document is valid although a's pool holds it
    doc = render_document(topo, "gw-a", 1, index)
    assert [(str(e.ip), e.gateway) for e in doc.networks[0].remote_endpoints] == [("192.168.1.3", "gw-b")]
    assert render(doc, PRIVATE).fdb  # bridged towards b


def test_a_different_mac_is_a_conflict_not_a_move_and_l3_networks_never_move() -> None:
    topo = topology()
    announce(topo, "gw-a", "192.168.1.3", "02:00:00:00:00:03", 100.0)
    announce(topo, "gw-b", "192.168.1.3", "02:66:66:66:66:66", 200.0)
    index = TopologyIndex.build(topo)
    assert [e.gateway for e in index.remote_endpoints("net1", "a")] == ["gw-a"]
    assert index.remote_endpoints("net1", "b") == []
    topo.networks["net1"] = Network("net1", IPv4Network("192.168.1.0/24"), "l3")
    announce(topo, "gw-b", "192.168.1.3", "02:00:00:00:00:03", 200.0)
    assert [e.gateway for e in TopologyIndex.build(topo).remote_endpoints("net1", "a")] == ["gw-a"]


def test_the_incremental_index_follows_a_move_like_a_full_build() -> None:
    topo = topology()
    announce(topo, "gw-a", "192.168.1.3", "02:00:00:00:00:03", 100.0)
    index = TopologyIndex.build(topo)
    moved = Announcement("net1", IPv4Address("192.168.1.3"), "gw-b", "02:00:00:00:00:03", 200.0, 200.0)
    after = index.with_announcements("net1", "gw-b", {moved.ip: moved})
    assert after.would_be_effective(moved)
    assert [e.gateway for e in after.remote_endpoints("net1", "b")] == ["gw-b"]
    assert after.remote_endpoints("net1", "a") == []
    assert [e.gateway for e in index.remote_endpoints("net1", "a")] == ["gw-a"]  # the old index is untouched
    # the announcing site's own gateways are told too (the address was remote in their documents)
    before = Topology(**{**vars(topo)})
    assert "gw-b" in candidates(before, topo, [("net1", "gw-b")])


def test_a_bridged_target_learns_on_its_lan_ports_only_and_skips_remote_addresses() -> None:
    pools = (AddressRange.parse("192.168.1.1-192.168.1.10"),)
    movable = (AddressRange.parse("192.168.1.11-192.168.1.20"),)
    target = LearnTarget("net1", "br-lan", IPv4Address("192.168.1.254"), pools, True, movable, frozenset({0xC0A80103}))
    assert not target.wants(IPv4Address("192.168.1.2"))  # seen on the bridge itself: may come from the tunnel
    assert target.wants(IPv4Address("192.168.1.2"), on_port=True)
    assert target.wants(IPv4Address("192.168.1.12"), on_port=True)  # moved here from the other site
    assert not target.wants(IPv4Address("192.168.1.12"))
    probed = [str(ip) for _t, ip in probe_order([target])]
    assert "192.168.1.3" not in probed and "192.168.1.2" in probed


def test_preflight_says_which_sites_bridge_and_what_their_cloud_needs() -> None:
    found = {
        (f.site, f.check, f.severity): f for f in l2_networks(topology("aws"), "a") + l2_networks(topology("aws"), "b")
    }
    assert "VNI" in found[("a", "l2", "ok")].message and "1370" in found[("a", "l2", "ok")].message
    assert "disable-port-security" in found[("a", "l2-port-security", "warning")].fix  # a is OpenStack
    assert "AWS" in found[("b", "l2", "warning")].message


def test_validate_says_a_moved_vm_is_accepted_from_its_new_site_only() -> None:
    topo = topology()
    announce(topo, "gw-a", "192.168.1.3", "02:00:00:00:00:03", 100.0)
    address = IPv4Address("192.168.1.3")
    assert validate_source(topo, "gw-b", address, "net1")[0] is False
    announce(topo, "gw-b", "192.168.1.3", "02:00:00:00:00:03", 200.0)
    accepted, why = validate_source(topo, "gw-b", address, "net1")
    assert accepted and "moved to site 'b'" in why
    assert validate_source(topo, "gw-a", address, "net1") == (
        False,
        "192.168.1.3 moved to site 'b' (gateway 'gw-b'), so it is dropped from here",
    )
