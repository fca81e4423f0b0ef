from ipaddress import IPv4Address, IPv4Network

from cloudgw.dataplane.nftrender import (
    FINGERPRINT_PREFIX,
    Filters,
    build_ruleset,
    flat_rules,
    gateway_rules,
    ruleset_from_listing,
)
from cloudgw.model.addr import AddressRange

R = AddressRange.parse


def filters(**changes):
    base = {
        "wan": "wan0",
        "tunnel": "cgw0",
        "listen_port": 51820,
        "wan_open_ports": (22,),
        "lan_sources": (("lan0", (R("192.168.1.1-192.168.1.10"),)),),
        "remote_sources": (R("192.168.1.11-192.168.1.20"), R("192.168.1.253")),
        "internal": (IPv4Network("192.168.1.0/24"),),
        "masquerade": (R("192.168.1.1-192.168.1.10"),),
    }
    return Filters(**{**base, **changes})


def rules_by_comment(f):
    """Comment -> rule, of the flat chains (the order of checks, each with its interface match)."""
    return {r["add"]["rule"]["comment"]: r["add"]["rule"] for r in flat_rules(f)}


IIF = {"meta": {"key": "iifname"}}


def walk(rules, iif):
    """The forward rules a packet from `iif` meets in the dispatched table, as (comment, expr)."""
    by_chain = {}
    for r in rules:
        by_chain.setdefault(r["add"]["rule"]["chain"], []).append(r["add"]["rule"])
    dispatch = by_chain["forward"][0]
    assert dispatch["comment"] == "dispatch"
    targets = dict(dispatch["expr"][0]["vmap"]["data"]["set"])
    chain = by_chain[targets[iif]["goto"]["target"]] if iif in targets else by_chain["forward"][1:]
    return [(r["comment"], r["expr"]) for r in chain]


def flat_walk(rules, iif):
    """The same from the flat chain: the rules for this interface or any, without the match."""
    walked = []
    for r in rules:
        rule = r["add"]["rule"]
        if rule["chain"] != "forward":
            continue
        first = rule["expr"][0].get("match", {})
        if first.get("left") == IIF and first.get("op") == "==":
            if first["right"] == iif:
                walked.append((rule["comment"], rule["expr"][1:]))
        else:
            walked.append((rule["comment"], rule["expr"]))
    return walked


def test_the_dispatched_forward_chain_gives_every_interface_the_flat_chains_rules():
    """A packet from each interface (and from one cloudgw does not know) meets exactly the checks of
    the flat chain, in the same order; every other chain is unchanged."""
    variants = [
        filters(),
        filters(masquerade=(), via_sources=(R("192.168.1.1-192.168.1.10"),), bridged=("br0",)),
        filters(forwards=(("tcp", 8080, IPv4Address("192.168.1.5"), 80),), blocked_sources=(R("192.168.1.3"),)),
        filters(lan_sources=(("lan0", (R("192.168.1.1-192.168.1.10"),)), ("lan1", (R("192.168.1.30"),)))),
    ]
    for f in variants:
        flat, dispatched = flat_rules(f), gateway_rules(f)
        for iif in ("lan0", "lan1", "cgw0", "wan0", "br0", "eth7"):
            assert walk(dispatched, iif) == flat_walk(flat, iif), (f, iif)
        assert [
            r
            for r in dispatched
            if r["add"]["rule"]["chain"] != "forward" and not r["add"]["rule"]["chain"].startswith("from-")
        ] == [r for r in flat if r["add"]["rule"]["chain"] != "forward"]


def test_batch_replaces_the_table_atomically():
    ruleset = build_ruleset(gateway_rules(filters()))
    first = ruleset.commands[:3]
    assert [next(iter(c)) for c in first] == ["add", "delete", "add"]
    assert all(c[next(iter(c))].get("table", {}).get("name") == "cloudgw" for c in first)


def test_lan_rule_drops_sources_outside_the_local_pool():
    lan = rules_by_comment(filters())["lan-spoof lan0"]
    match = lan["expr"][1]["match"]
    assert match["op"] == "!=" and match["right"] == {"set": [{"range": ["192.168.1.1", "192.168.1.10"]}]}
    assert lan["expr"][-2:] == [{"counter": "lan_spoofed"}, {"drop": None}]


def test_single_addresses_are_plain_set_members():
    tunnel = rules_by_comment(filters())["tunnel-spoof cgw0"]
    assert tunnel["expr"][1]["match"]["right"]["set"][1] == "192.168.1.253"


def test_forward_chain_order_spoofing_mss_state_then_drops():
    comments = [r["add"]["rule"]["comment"] for r in flat_rules(filters()) if r["add"]["rule"]["chain"] == "forward"]
    assert comments[:4] == ["lan-spoof lan0", "tunnel-spoof cgw0", "mss", "established"]
    assert comments.index("wan-inbound") > comments.index("established")
    rules = gateway_rules(filters())
    assert [c for c, _ in walk(rules, "lan0")][:3] == ["lan-spoof lan0", "mss", "established"]
    assert [c for c, _ in walk(rules, "cgw0")][:3] == ["tunnel-spoof cgw0", "mss", "established"]
    assert [c for c, _ in walk(rules, "wan0")] == ["mss", "established", "wan-inbound"]


def test_napt_masquerades_out_of_the_wan_but_never_to_a_stretched_network():
    napt = rules_by_comment(filters())["napt"]
    assert napt["chain"] == "postrouting"
    assert {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "wan0"}} in napt["expr"]
    daddr = next(
        e for e in napt["expr"] if "match" in e and e["match"]["left"].get("payload", {}).get("field") == "daddr"
    )
    assert daddr["match"]["op"] == "!=" and daddr["match"]["right"]["set"][0]["prefix"] == {
        "addr": "192.168.1.0",
        "len": 24,
    }
    assert napt["expr"][-1] == {"masquerade": None}


def test_no_masquerade_rule_without_egress_sources():
    assert "napt" not in rules_by_comment(filters(masquerade=()))


def test_port_forward_is_dnat_from_the_wan_and_accepted():
    f = filters(forwards=(("tcp", 8080, IPv4Address("192.168.1.5"), 80),))
    rules = rules_by_comment(f)
    dnat = rules["forward tcp/8080"]
    assert dnat["chain"] == "prerouting"
    assert dnat["expr"][-1] == {"dnat": {"family": "ip", "addr": "192.168.1.5", "port": 80}}
    assert "forwarded" in rules


def test_wan_input_allows_tunnel_ping_and_open_ports_only():
    rules = rules_by_comment(filters(wan_open_ports=(22, 2222)))
    assert rules["wan-tunnel"]["expr"][1]["match"]["right"] == 51820
    assert rules["wan-open"]["expr"][1]["match"]["right"] == {"set": [22, 2222]}
    assert rules["wan-input"]["expr"][-1] == {"drop": None}
    assert rules["wan-input"]["chain"] == "input"
    # the tunnel's packets (nearly all the WAN delivers) meet their accept first, the drop last
    order = [r["add"]["rule"]["comment"] for r in gateway_rules(filters()) if r["add"]["rule"]["chain"] == "input"]
    assert order[0] == "wan-tunnel" and order[-1] == "wan-input"


def test_a_source_set_is_the_fewest_ranges():
    # a remote pool and the peer gateway's LAN address inside it: one range, matched by a compare
    f = filters(remote_sources=(R("192.168.1.11-192.168.1.20"), R("192.168.1.12"), R("192.168.1.21")))
    spoof = rules_by_comment(f)["tunnel-spoof cgw0"]
    right = next(e["match"]["right"] for e in spoof["expr"] if e.get("match", {}).get("op") == "!=")
    assert right == {"set": [{"range": ["192.168.1.11", "192.168.1.21"]}]}


def test_egress_none_and_via_block_the_wan_path():
    rules = rules_by_comment(filters(masquerade=(), blocked_sources=(R("192.168.1.1-192.168.1.10"),)))
    assert rules["egress-none"]["expr"][-2:] == [{"counter": "egress_blocked"}, {"drop": None}]
    via = rules_by_comment(filters(masquerade=(), via_sources=(R("192.168.1.1-192.168.1.10"),)))
    assert "egress-via" in via
    # with egress through a peer, Internet sources may come out of the tunnel, our own networks may not
    assert any(
        e.get("match", {}).get("right", {}).get("set", [{}])[0].get("prefix")
        for e in via["tunnel-spoof cgw0"]["expr"]
        if isinstance(e.get("match", {}).get("right"), dict)
    )


def test_transit_only_for_the_pools_a_peer_was_given():
    closed = rules_by_comment(filters())["transit"]
    assert {"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4"}} in closed["expr"]
    opened = rules_by_comment(filters(transit=(R("192.168.1.11-192.168.1.20"),)))["transit"]
    assert opened["expr"][2]["match"]["op"] == "!="


def test_listing_round_trip_gives_the_same_identity():
    ruleset = build_ruleset(gateway_rules(filters()))
    listing = {
        "nftables": [
            {"metainfo": {}},
            {"table": {"name": "cloudgw"}},
            {"counter": {"name": "lan_spoofed", "packets": 7}},
        ]
    }
    for chain, comment in ruleset.rule_ids:
        listing["nftables"].append({"rule": {"chain": chain, "comment": comment, "handle": 9, "expr": []}})
    observed, counters = ruleset_from_listing(listing)
    assert observed == ruleset
    assert counters == {"lan_spoofed": 7}


def test_hand_deleted_rule_is_a_difference():
    ruleset = build_ruleset(gateway_rules(filters()))
    listing = {"nftables": [{"rule": {"chain": c, "comment": m}} for c, m in ruleset.rule_ids if m != "mss"]}
    observed, _ = ruleset_from_listing(listing)
    assert observed is not None and observed != ruleset
    assert any(m.startswith(FINGERPRINT_PREFIX) for _, m in observed.rule_ids)


def test_empty_listing_is_no_table():
    assert ruleset_from_listing({"nftables": [{"metainfo": {}}]}) == (None, {})


def test_only_internet_flows_are_tracked():
    rules = [r["add"]["rule"] for r in gateway_rules(filters())]
    raw = {(r["chain"], r["comment"]): r["expr"] for r in rules if r["chain"].startswith("raw-")}
    assert set(raw) == {
        ("raw-prerouting", "notrack tunnel"),
        ("raw-output", "notrack tunnel"),
        ("raw-prerouting", "notrack stretched"),
    }
    assert all({"notrack": None} in expr for expr in raw.values())
    # in prerouting each rule ends the raw chain once its packet is untracked, and the stretched
    # traffic's (most packets) is tried first
    prerouting = [r for r in rules if r["chain"] == "raw-prerouting"]
    assert [r["comment"] for r in prerouting] == ["notrack stretched", "notrack tunnel"]
    assert all(r["expr"][-2:] == [{"notrack": None}, {"accept": None}] for r in prerouting)
    # the tunnel's UDP, both ways on the WAN only
    assert raw[("raw-prerouting", "notrack tunnel")][0]["match"]["right"] == "wan0"
    assert raw[("raw-output", "notrack tunnel")][1]["match"]["right"] == 51820
    # both ends inside a stretched network: never NATed, so never tracked
    stretched = raw[("raw-prerouting", "notrack stretched")]
    prefix = {"set": [{"prefix": {"addr": "192.168.1.0", "len": 24}}]}
    assert [m["match"]["right"] for m in stretched[:2]] == [prefix, prefix]
    chains = {
        c["add"]["chain"]["name"]: c["add"]["chain"]
        for c in build_ruleset(gateway_rules(filters())).commands
        if "chain" in c.get("add", {})
    }
    assert chains["raw-prerouting"]["prio"] == -300 and chains["raw-output"]["hook"] == "output"
