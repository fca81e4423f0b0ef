"""The derived index (one gateway's announcements replaced) must equal one built from scratch."""

from ipaddress import IPv4Address, IPv4Network

from hypothesis import given, settings
from hypothesis import strategies as st

from cloudgw.mapping.documents import render_document
from cloudgw.mapping.index import TopologyIndex
from cloudgw.model.addr import AddressRange
from cloudgw.model.topology import Announcement, Connection, Gateway, Network, Pool, Site, Topology
from tests.helpers import KEY_A, KEY_B, KEY_C

GATEWAYS = ["gw-a1", "gw-a2", "gw-b"]  # two gateways at site a, one at site b
ADDRESSES = [f"10.1.0.{i}" for i in range(1, 9)] + ["10.1.0.30", "10.2.0.1"]  # some outside every pool


def topology(announced: dict[str, set[str]]) -> Topology:
    topo = Topology(
        sites={s: Site(s) for s in ("a", "b")},
        networks={"n": Network("n", IPv4Network("10.1.0.0/24"))},
        gateways={
            "gw-a1": Gateway("gw-a1", "a", "192.0.2.1:51820", KEY_A),
            "gw-a2": Gateway("gw-a2", "a", "192.0.2.2:51820", KEY_B),
            "gw-b": Gateway("gw-b", "b", "192.0.2.3:51820", KEY_C),
        },
        pools={
            "pa": Pool("pa", "n", "a", AddressRange.parse("10.1.0.1-10.1.0.4")),
            "pb": Pool("pb", "n", "b", AddressRange.parse("10.1.0.5-10.1.0.10")),
        },
        connections={"ab": Connection("ab", "n", "a", "b")},
    )
    for gateway, ips in announced.items():
        for ip in ips:
            topo.announcements[("n", IPv4Address(ip), gateway)] = Announcement("n", IPv4Address(ip), gateway)
    return topo


announcements = st.dictionaries(st.sampled_from(GATEWAYS), st.sets(st.sampled_from(ADDRESSES)))


def comparable(index: TopologyIndex) -> tuple:
    effective = {k: v for k, v in index.effective.items() if v}
    announced = {k: v for k, v in index.announced.items() if v}
    return effective, announced, index.effective_keys


@settings(max_examples=150, deadline=None)
@given(before=announcements, gateway=st.sampled_from(GATEWAYS), after=st.sets(st.sampled_from(ADDRESSES)))
def test_derived_index_equals_rebuilt(before, gateway, after):
    old = TopologyIndex.build(topology(before))
    new_topo = topology({**before, gateway: after})
    group = {ip: a for (_, ip, g), a in new_topo.announcements.items() if g == gateway}
    derived = old.with_announcements("n", gateway, group)
    assert comparable(derived) == comparable(TopologyIndex.build(new_topo))
    for name in GATEWAYS:  # and the documents rendered from it agree
        assert render_document(new_topo, name, 1, derived) == render_document(new_topo, name, 1)
    assert comparable(old) == comparable(TopologyIndex.build(topology(before)))  # the old one is untouched


@settings(max_examples=100, deadline=None)
@given(
    before=announcements,
    changed=st.sets(st.sampled_from(GATEWAYS), min_size=1),
    key=st.sampled_from([None, KEY_A, KEY_C]),
    role=st.sampled_from([None, "active", "standby"]),
    epoch=st.integers(0, 3),
)
def test_index_after_gateways_change_in_place_equals_rebuilt(before, changed, key, role, epoch):
    """A join (key, endpoint) or a role change replaces gateways in place: the derived index renders
    the same documents as one built from scratch, and the old index is untouched."""
    from dataclasses import replace

    old_topo = topology(before)
    old = TopologyIndex.build(old_topo)
    old.remote_endpoints("n", "a"), old.remote_endpoints("n", "b")  # cached lists that must not survive
    new_topo = topology(before)
    for name in changed:
        new_topo.gateways[name] = replace(
            new_topo.gateways[name], public_key=key, endpoint="198.51.100.9:51820", role=role, role_epoch=epoch
        )
    derived = old.with_gateways(new_topo.gateways[name] for name in changed)
    rebuilt = TopologyIndex.build(new_topo)
    assert derived is not None
    assert derived.joined == rebuilt.joined and derived.gateways_by_site == rebuilt.gateways_by_site
    assert comparable(derived) == comparable(rebuilt)
    for name in GATEWAYS:
        assert render_document(new_topo, name, 1, derived) == render_document(new_topo, name, 1)
        assert render_document(old_topo, name, 1, old) == render_document(old_topo, name, 1)


def test_index_after_a_gateway_moves_site_is_rebuilt():
    from dataclasses import replace

    topo = topology({})
    moved = replace(topo.gateways["gw-b"], site="a")
    assert TopologyIndex.build(topo).with_gateways([moved]) is None
