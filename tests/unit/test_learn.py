from ipaddress import IPv4Address

from cloudgw.agent.learn import EndpointTable, LearnTarget, build_arp_request, parse_arp, probe_order
from cloudgw.model.addr import AddressRange


def test_arp_request_round_trip():
    frame = build_arp_request("02:00:00:00:00:fe", IPv4Address("192.168.1.254"), IPv4Address("192.168.1.7"))
    assert len(frame) == 42
    assert frame[:6] == b"\xff" * 6
    assert parse_arp(frame) == (1, "02:00:00:00:00:fe", IPv4Address("192.168.1.254"))


def test_parse_arp_ignores_other_frames():
    assert parse_arp(b"\x00" * 60) is None
    assert parse_arp(b"short") is None


def test_target_wants_only_local_pool_and_not_itself():
    target = LearnTarget("n", "lan0", IPv4Address("192.168.1.5"), (AddressRange.parse("192.168.1.1-192.168.1.10"),))
    assert target.wants(IPv4Address("192.168.1.3"))
    assert not target.wants(IPv4Address("192.168.1.5"))
    assert not target.wants(IPv4Address("192.168.1.11"))


def test_probe_order_covers_pool_once_and_skips_unaddressed_targets():
    pool = (AddressRange.parse("192.168.1.1-192.168.1.4"),)
    targets = [LearnTarget("n", "lan0", IPv4Address("192.168.1.254"), pool), LearnTarget("m", "lan1", None, pool)]
    assert [str(ip) for _, ip in probe_order(targets)] == ["192.168.1.1", "192.168.1.2", "192.168.1.3", "192.168.1.4"]


def test_table_learns_moves_and_expires():
    events = []
    table = EndpointTable(on_change=lambda e, what: events.append((what, e.ip, e.mac)))
    table.seen("n", IPv4Address("192.168.1.3"), "02:00:00:00:00:03", "arp", now=100)
    table.seen("n", IPv4Address("192.168.1.3"), "02:00:00:00:00:03", "probe", now=150)
    table.seen("n", IPv4Address("192.168.1.3"), "02:00:00:00:00:33", "arp", now=160)
    assert [e[0] for e in events] == ["learned", "moved"]
    assert table.expire(now=400, max_age=300) == []
    gone = table.expire(now=461, max_age=300)
    assert [e.ip for e in gone] == ["192.168.1.3"]
    assert events[-1][0] == "expired"
    assert table.snapshot() == []
