from ipaddress import IPv4Address, IPv4Network

import pytest

from cloudgw.model.addr import AddressRange, merge_ranges, parse_host_port


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("192.168.1.1-192.168.1.10", "192.168.1.1", "192.168.1.10"),
        (" 192.168.1.1 - 192.168.1.10 ", "192.168.1.1", "192.168.1.10"),
        ("192.168.1.16/28", "192.168.1.16", "192.168.1.31"),
        ("10.0.0.7", "10.0.0.7", "10.0.0.7"),
    ],
    ids=["range", "spaces", "cidr", "single"],
)
def test_parse_range(text, first, last):
    parsed = AddressRange.parse(text)
    assert (str(parsed.first), str(parsed.last)) == (first, last)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("192.168.1.10-192.168.1.1", "after last"),
        ("192.168.1.300", "not an IPv4 range"),
        ("192.168.1.1/24", "not an IPv4 range"),
        ("fe80::1", "not an IPv4 range"),
    ],
    ids=["empty", "reversed", "bad-octet", "host-bits-set", "ipv6"],
)
def test_parse_range_refuses(text, needle):
    with pytest.raises(ValueError, match=needle):
        AddressRange.parse(text)


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("10.0.0.1-10.0.0.10", "10.0.0.11-10.0.0.20", False),
        ("10.0.0.1-10.0.0.10", "10.0.0.10-10.0.0.20", True),
        ("10.0.0.1-10.0.0.30", "10.0.0.11-10.0.0.20", True),
        ("10.0.0.5", "10.0.0.5", True),
    ],
    ids=["adjacent", "touching", "containing", "same-single"],
)
def test_overlaps(a, b, overlap):
    assert AddressRange.parse(a).overlaps(AddressRange.parse(b)) is overlap
    assert AddressRange.parse(b).overlaps(AddressRange.parse(a)) is overlap


def test_cidrs_cover_exactly_the_range():
    pool = AddressRange.parse("192.168.1.11-192.168.1.20")
    cidrs = pool.cidrs()
    assert [str(c) for c in cidrs] == ["192.168.1.11/32", "192.168.1.12/30", "192.168.1.16/30", "192.168.1.20/32"]
    covered = {a for c in cidrs for a in c}
    assert covered == set(pool.addresses())
    assert pool.size == 10


def test_contains_and_within():
    pool = AddressRange.parse("192.168.1.1-192.168.1.10")
    assert IPv4Address("192.168.1.10") in pool
    assert IPv4Address("192.168.1.11") not in pool
    assert pool.within(IPv4Network("192.168.1.0/24"))
    assert not pool.within(IPv4Network("192.168.1.0/29"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.1:51820", ("203.0.113.1", 51820)),
        ("gw.example.org:1", ("gw.example.org", 1)),
    ],
    ids=["ip", "name"],
)
def test_host_port(text, expected):
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("203.0.113.1", "no port"),
        ("203.0.113.1:0", "outside"),
        ("203.0.113.1:x", "not a number"),
        (":51820", "no host"),
    ],
    ids=["no-port", "zero", "nan", "no-host"],
)
def test_host_port_refuses(text, needle):
    with pytest.raises(ValueError, match=needle):
        parse_host_port(text)


def test_range_minus_cuts_holes_and_edges():
    whole = AddressRange.parse("192.168.1.2-192.168.1.254")
    left = whole.minus(
        [AddressRange.parse("192.168.1.11-192.168.1.20"), AddressRange.parse("192.168.1.250-192.168.1.255")]
    )
    assert [str(r) for r in left] == ["192.168.1.2-192.168.1.10", "192.168.1.21-192.168.1.249"]
    assert whole.minus([AddressRange.parse("192.168.1.0/24")]) == []
    assert whole.minus([]) == [whole]


def test_merge_ranges_joins_overlapping_and_adjacent_only():
    R = AddressRange.parse
    merged = merge_ranges([R("10.0.0.5"), R("10.0.0.0/24"), R("10.0.1.0-10.0.1.9"), R("10.0.1.11"), R("9.0.0.1")])
    assert [str(r) for r in merged] == [str(R("9.0.0.1")), "10.0.0.0-10.0.1.9", str(R("10.0.1.11"))]

    # the same addresses, nothing gained or lost
    def covered(ranges):
        return {a for r in ranges for a in r.addresses()}

    some = [R("10.0.0.250-10.0.1.3"), R("10.0.1.2-10.0.1.4"), R("10.0.1.6")]
    assert covered(merge_ranges(some)) == covered(some)
    assert merge_ranges([]) == []
