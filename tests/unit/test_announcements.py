"""Announcements (model/topology.py): grouped per (network, gateway), read like the flat dict they
replace, and a replaced group leaves the copy it came from unchanged."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given, settings
from hypothesis import strategies as st

from cloudgw.model.topology import Announcement, Announcements

writes = st.lists(
    st.tuples(
        st.sampled_from(["n1", "n2"]),
        st.sampled_from(["gw-a", "gw-b", "gw-c"]),
        st.sets(st.integers(1, 40), max_size=8),
    ),
    max_size=25,
)


@settings(max_examples=200)
@given(writes)
def test_grouped_announcements_read_like_the_flat_dict(steps):
    flat: dict = {}
    grouped = Announcements.of({})
    history = []
    for network, gateway, ips in steps:
        group = {IPv4Address(f"10.0.0.{i}"): Announcement(network, IPv4Address(f"10.0.0.{i}"), gateway) for i in ips}
        for key in [k for k in flat if k[0] == network and k[2] == gateway]:
            del flat[key]
        flat.update({(network, ip, gateway): a for ip, a in group.items()})
        before, snapshot = grouped, dict(grouped.items())
        grouped = grouped.with_group(network, gateway, group)
        history.append((before, snapshot))
        assert dict(grouped.items()) == flat
        assert len(grouped) == len(flat) and set(grouped) == set(flat)
        assert grouped == flat  # a Mapping compares with a dict by content
        assert dict(grouped.group(network, gateway)) == group
        for key, announcement in flat.items():
            assert grouped[key] is announcement and key in grouped
        assert (network, IPv4Address("10.0.0.99"), gateway) not in grouped
    for before, snapshot in history:  # copy on write: no earlier copy changed
        assert dict(before.items()) == snapshot
    assert Announcements.of(flat) == flat
