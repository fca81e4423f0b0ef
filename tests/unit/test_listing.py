"""Pages of the endpoint list (the fast path: sorted runs, merged at the cursor) must equal the slow
path (everything sorted and filtered), for every filter, page size and change of announcements;
and cursors are untrusted input."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudgw.errors import InvalidInput
from cloudgw.mapping.index import TopologyIndex
from cloudgw.mapping.listing import EndpointListing, EndpointQuery
from cloudgw.model.addr import AddressRange
from cloudgw.model.paging import decode_cursor, encode_cursor, page_of
from cloudgw.model.topology import Announcement, Gateway, Network, Pool, Site, Topology
from tests.helpers import KEY_A, KEY_B, KEY_C

GATEWAYS = {"gw-a1": "a", "gw-a2": "a", "gw-b": "b"}
NETWORKS = ("n1", "n2")
ADDRESSES = [f"10.1.0.{i}" for i in (1, 2, 3, 5, 9, 17, 40, 200)] + ["10.2.0.1"]


def topology(announced: dict[tuple[str, str], set[str]]) -> Topology:
    keys = dict(zip(GATEWAYS, (KEY_A, KEY_B, KEY_C), strict=True))
    topo = Topology(
        sites={s: Site(s) for s in ("a", "b")},
        networks={n: Network(n, IPv4Network("10.0.0.0/8")) for n in NETWORKS},
        gateways={g: Gateway(g, site, "192.0.2.1:51820", keys[g]) for g, site in GATEWAYS.items()},
        pools={f"{n}-a": Pool(f"{n}-a", n, "a", AddressRange.parse("10.1.0.1-10.1.0.9")) for n in NETWORKS}
        | {f"{n}-b": Pool(f"{n}-b", n, "b", AddressRange.parse("10.1.0.10-10.1.0.100")) for n in NETWORKS},
    )
    for (network, gateway), ips in announced.items():
        for ip in ips:
            mac = f"02:00:00:00:00:{int(IPv4Address(ip)) % 256:02X}"
            topo.announcements[(network, IPv4Address(ip), gateway)] = Announcement(
                network, IPv4Address(ip), gateway, mac
            )
    return topo


def slow(topo: Topology, index: TopologyIndex, query: EndpointQuery) -> list[Announcement]:
    rows = sorted(topo.announcements.values(), key=lambda a: (a.network, int(a.ip), a.gateway))
    text = (query.text or "").lower()
    return [
        a
        for a in rows
        if (query.network is None or a.network == query.network)
        and (query.gateway is None or a.gateway == query.gateway)
        and (query.site is None or GATEWAYS[a.gateway] == query.site)
        and (query.prefix is None or a.ip in query.prefix)
        and (query.state is None or index.is_effective(a) == (query.state == "effective"))
        and text in f"{a.ip} {a.mac}".lower()
    ]


def all_pages(
    listing: EndpointListing, index: TopologyIndex, query: EndpointQuery, limit: int, total: int
) -> list[Announcement]:
    found: list[Announcement] = []
    after = None
    for _ in range(100):
        page = listing.page(index, query, after, limit)
        assert len(page.items) <= limit
        assert page.total == total  # the exact total, on every page
        found.extend(page.items)
        if page.next_key is None:
            return found
        # the cursor travels as text, like the API's
        after = decode_cursor("endpoints", encode_cursor("endpoints", page.next_key), (str, int, str))
    raise AssertionError("paging does not end")


groups = st.dictionaries(
    st.tuples(st.sampled_from(NETWORKS), st.sampled_from(sorted(GATEWAYS))), st.sets(st.sampled_from(ADDRESSES))
)
queries = st.builds(
    EndpointQuery,
    network=st.none() | st.sampled_from(NETWORKS),
    site=st.none() | st.sampled_from(["a", "b"]),
    gateway=st.none() | st.sampled_from(sorted(GATEWAYS)),
    prefix=st.none()
    | st.sampled_from([IPv4Network("10.1.0.0/28"), IPv4Network("10.1.0.16/28"), IPv4Network("10.2.0.1/32")]),
    state=st.none() | st.sampled_from(["effective", "ignored"]),
    text=st.none() | st.sampled_from(["10.1.0.1", "0:0a", ".2", "02:00"]),
)


@settings(max_examples=300, deadline=None)
@given(
    before=groups,
    changed=st.sampled_from(sorted(GATEWAYS)),
    after=st.sets(st.sampled_from(ADDRESSES)),
    query=queries,
    limit=st.integers(1, 7),
)
def test_pages_equal_the_slow_path_before_and_after_a_gateway_announces_again(before, changed, after, query, limit):
    listing = EndpointListing()
    topo = topology(before)
    index = TopologyIndex.build(topo)
    expected = slow(topo, index, query)
    assert all_pages(listing, index, query, limit, len(expected)) == expected
    # the gateway announces again in n1: the derived index shares the other groups, the listing re-sorts only this one
    new_topo = topology({**before, ("n1", changed): after})
    group = {ip: a for (n, ip, g), a in new_topo.announcements.items() if g == changed and n == "n1"}
    new_index = index.with_announcements("n1", changed, group)
    expected = slow(new_topo, new_index, query)
    assert all_pages(listing, new_index, query, limit, len(expected)) == expected
    whole = listing.page(new_index, query, None, None)
    assert whole.items == expected and whole.next_key is None


def test_conflicts_are_addresses_of_two_gateways_once_per_index():
    topo = topology(
        {("n1", "gw-a1"): {"10.1.0.1", "10.1.0.2"}, ("n1", "gw-b"): {"10.1.0.2"}, ("n2", "gw-b"): {"10.1.0.1"}}
    )
    listing, index = EndpointListing(), TopologyIndex.build(topo)
    assert listing.conflicts(index) == [("n1", int(IPv4Address("10.1.0.2")), ["gw-a1", "gw-b"])]
    assert listing.conflicts(index) is listing.conflicts(index)


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        encode_cursor("sites", ("x",)),  # another list's cursor
        encode_cursor("endpoints", ("n", "10.1.0.1", "gw")),  # the address as text, not a number
        encode_cursor("endpoints", ("n", 1)),  # too short
        "W10",  # []
        "e30",  # {}
        encode_cursor("endpoints", ("n" * 300, 1, "gw")),
        "A" * 600,
    ],
    ids=["garbage", "other-list", "wrong-type", "short", "empty-list", "object", "long-part", "too-long"],
)
def test_bad_cursors_are_refused_and_named(cursor):
    with pytest.raises(InvalidInput) as refused:
        decode_cursor("endpoints", cursor, (str, int, str))
    assert [p.field for p in refused.value.problems] == ["cursor"]
    assert "next_cursor" in refused.value.problems[0].fix


@pytest.mark.parametrize(
    ("after", "limit", "items", "next_key"),
    [
        (None, None, ["a", "b", "c"], None),
        (None, 2, ["a", "b"], ("b",)),
        (("b",), 2, ["c"], None),
        (("bb",), 5, ["c"], None),  # a cursor between rows (the row was deleted) still works
        (("c",), 2, [], None),
    ],
    ids=["all", "first", "last", "deleted-row", "past-the-end"],
)
def test_page_of_sorted_names(after, limit, items, next_key):
    page = page_of(["a", "b", "c"], lambda name: (name,), after, limit)
    assert (page.items, page.total, page.next_key) == (items, 3, next_key)


def test_a_rebuilt_index_keeps_the_sorted_runs_of_unchanged_announcements():
    topo = topology({("n1", "gw-a1"): {"10.1.0.1", "10.1.0.2"}, ("n1", "gw-b"): {"10.1.0.17"}})
    listing = EndpointListing()
    query = EndpointQuery()
    first = listing.page(TopologyIndex.build(topo), query, None, None)
    sorted_runs = {key: run.ips for key, run in listing._runs.items()}
    # a configuration change rebuilds the index: new groups, the same announcement objects
    again = listing.page(TopologyIndex.build(topo), query, None, None)
    assert again.items == first.items
    assert all(listing._runs[key].ips is ips for key, ips in sorted_runs.items())  # not sorted again
    # a changed announcement (a new MAC) in a rebuilt index is seen
    ip = IPv4Address("10.1.0.2")
    topo.announcements[("n1", ip, "gw-a1")] = Announcement("n1", ip, "gw-a1", "02:00:00:00:00:99")
    changed = listing.page(TopologyIndex.build(topo), EndpointQuery(text="00:99"), None, None)
    assert [a.ip for a in changed.items] == [ip]
    assert listing._runs[("n1", "gw-a1")].ips is not sorted_runs[("n1", "gw-a1")]
