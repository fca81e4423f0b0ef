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


def test_restore_keeps_fresh_endpoints_and_skips_stale_or_malformed_ones():
    saved = EndpointTable()
    saved.seen("n", IPv4Address("192.168.1.3"), "02:00:00:00:00:03", "arp", now=1000)
    saved.seen("n", IPv4Address("192.168.1.4"), "02:00:00:00:00:04", "arp", now=600)
    items = [*saved.dump(), {"network": "n", "ip": "not-an-ip"}, "junk", {"network": "n"}]
    table = EndpointTable()
    assert table.restore(items, now=1010, max_age=300) == 1
    [endpoint] = table.snapshot()
    assert (endpoint.ip, endpoint.mac, endpoint.via, endpoint.last_seen) == (
        "192.168.1.3",
        "02:00:00:00:00:03",
        "restored",
        1000,
    )
    assert table.restore(None, now=1010, max_age=300) == 0  # no file yet
    assert table.restore({"not": "a list"}, now=1010, max_age=300) == 0


def test_restored_endpoint_is_refreshed_by_the_learner_and_expires_like_any_other():
    table = EndpointTable()
    table.restore(
        [{"network": "n", "ip": "192.168.1.3", "mac": "02:00:00:00:00:03", "first_seen": 900, "last_seen": 1000}],
        1000,
        300,
    )
    table.seen("n", IPv4Address("192.168.1.3"), "02:00:00:00:00:03", "probe", now=1200)
    assert table.expire(now=1400, max_age=300) == []
    assert [e.ip for e in table.expire(now=1501, max_age=300)] == ["192.168.1.3"]
