from ipaddress import IPv4Address

from cloudgw.dataplane.nftrender import (
    FINGERPRINT_PREFIX,
    LanFilter,
    TunnelFilter,
    build_ruleset,
    forward_rules,
    ruleset_from_listing,
)
from cloudgw.model.addr import AddressRange

R = AddressRange.parse


def rules():
    return forward_rules(
        [LanFilter("lan0", (R("192.168.1.1-192.168.1.10"),))],
        TunnelFilter("cgw0", (R("192.168.1.11-192.168.1.20"), R("192.168.1.253"))),
    )


def test_batch_replaces_the_table_atomically():
    ruleset = build_ruleset(rules())
    first = ruleset.commands[:3]
    assert [next(iter(c)) for c in first] == ["add", "delete", "add"]
    assert all(c[next(iter(c))].get("table", {}).get("name") == "cloudgw" for c in first)


def test_lan_rule_drops_sources_outside_the_local_pool():
    lan = rules()[0]["add"]["rule"]
    assert lan["comment"] == "lan-spoof lan0"
    match = lan["expr"][1]["match"]
    assert match["op"] == "!=" and match["right"] == {"set": [{"range": ["192.168.1.1", "192.168.1.10"]}]}
    assert lan["expr"][-2:] == [{"counter": "lan_spoofed"}, {"drop": None}]


def test_single_addresses_are_plain_set_members():
    tunnel = rules()[1]["add"]["rule"]
    assert tunnel["expr"][1]["match"]["right"]["set"][1] == "192.168.1.253"


def test_hub_without_local_pool_forwards_nothing_from_lan():
    rule = forward_rules([LanFilter("lan0", ())], None)[0]["add"]["rule"]
    assert {"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4"}} in rule["expr"]


def test_listing_round_trip_gives_the_same_identity():
    ruleset = build_ruleset(rules())
    listing = {
        "nftables": [
            {"metainfo": {}},
            {"table": {"name": "cloudgw"}},
            {"counter": {"name": "lan_spoofed", "packets": 7}},
        ]
    }
    # what nft lists back: rules grouped by chain (creation order), each with its comment
    for chain, comment in ruleset.rule_ids:
        listing["nftables"].append({"rule": {"chain": chain, "comment": comment, "handle": 9, "expr": []}})
    observed, counters = ruleset_from_listing(listing)
    assert observed == ruleset
    assert counters == {"lan_spoofed": 7}


def test_hand_deleted_rule_is_a_difference():
    ruleset = build_ruleset(rules())
    listing = {"nftables": [{"rule": {"chain": c, "comment": m}} for c, m in ruleset.rule_ids if m != "mss"]}
    observed, _ = ruleset_from_listing(listing)
    assert observed is not None and observed != ruleset
    assert any(m.startswith(FINGERPRINT_PREFIX) for _, m in observed.rule_ids)


def test_empty_listing_is_no_table():
    assert ruleset_from_listing({"nftables": [{"metainfo": {}}]}) == (None, {})


def test_unused_import_guard():
    assert IPv4Address("192.168.1.1") in R("192.168.1.1-192.168.1.10")
