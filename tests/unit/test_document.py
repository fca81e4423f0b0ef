"""Document validation: every refusal names its field, and a valid document round-trips."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudgw.errors import InvalidInput
from cloudgw.model.document import dump_document, load_document, parse_document
from tests.helpers import KEY_A, KEY_B, KEY_C, deep, sample_document


def test_valid_document_loads_and_round_trips():
    doc = load_document(sample_document())
    assert doc.gateway.tunnel.interface == "cgw0"
    assert doc.local_pools(doc.networks[0])[0].size == 10
    assert load_document(dump_document(doc)) == doc


BAD = [
    (
        "overlapping-pools",
        {"networks.0.pools.1.range": "192.168.1.5-192.168.1.20"},
        "networks[0].pools[1].range",
        "overlaps",
    ),
    (
        "pool-outside-network",
        {"networks.0.pools.1.range": "10.0.0.1-10.0.0.5"},
        "networks[0].pools[1].range",
        "outside the network",
    ),
    (
        "pool-with-broadcast",
        {"networks.0.pools.1.range": "192.168.1.250-192.168.1.255"},
        "networks[0].pools[1].range",
        "broadcast",
    ),
    ("malformed-key", {"peers.0.public_key": "not-a-key"}, "peers[0].public_key", "not a WireGuard key"),
    ("short-key", {"peers.0.public_key": "AAAA"}, "peers[0].public_key", "decodes to 3 bytes"),
    ("unknown-site", {"networks.0.pools.1.site": "zz"}, "networks[0].pools[1].site", "unknown site"),
    (
        "unknown-gateway",
        {"networks.0.remote_endpoints.0.gateway": "gw-x"},
        "networks[0].remote_endpoints[0].gateway",
        "unknown gateway",
    ),
    (
        "endpoint-in-wrong-pool",
        {"networks.0.remote_endpoints.0.ip": "192.168.1.3"},
        "networks[0].remote_endpoints[0].ip",
        "not in a pool of site 'b'",
    ),
    ("typo-field", {"gateway.wan_interfce": "wan0"}, "gateway.wan_interfce", "unknown field"),
    ("bad-port", {"gateway.tunnel": {"listen_port": 70000}}, "gateway.tunnel.listen_port", "outside 1-65535"),
    ("mtu-too-small", {"gateway.tunnel": {"mtu": 1000}}, "gateway.tunnel.mtu", "greater than or equal to 1280"),
    ("tunnel-not-owned", {"gateway.tunnel": {"interface": "wg0"}}, "gateway.tunnel.interface", "cgw"),
    ("lan-is-wan", {"networks.0.lan_interface": "wan0"}, "networks[0].lan_interface", "also the WAN"),
    ("bad-endpoint", {"peers.0.endpoint": "203.0.113.20"}, "peers[0].endpoint", "no port"),
    ("peer-same-site", {"peers.0.site": "a"}, "peers[0].site", "own site"),
    ("lan-address-outside", {"networks.0.lan_address": "10.1.1.1"}, "networks[0].lan_address", "outside"),
    ("bad-name", {"gateway.name": "GW_A"}, "gateway.name", "lower-case"),
    ("bad-cidr", {"networks.0.cidr": "192.168.1.0/33"}, "networks[0].cidr", ""),
    (
        "egress-via-unknown",
        {"networks.0.egress": "via", "networks.0.egress_via": "gw-x"},
        "networks[0].egress_via",
        "not a peer gateway",
    ),
    ("egress-via-without-via", {"networks.0.egress_via": "gw-b"}, "networks[0].egress_via", "only used with"),
    (
        "forward-bad-target",
        {
            "forwards": [
                {"name": "web", "protocol": "tcp", "public_port": 80, "target_ip": "192.168.1.15", "target_port": 80}
            ]
        },
        "forwards[0].target_ip",
        "not in a pool of this site",
    ),
    (
        "forward-port",
        {
            "forwards": [
                {"name": "web", "protocol": "tcp", "public_port": 0, "target_ip": "192.168.1.5", "target_port": 80}
            ]
        },
        "forwards[0].public_port",
        "outside 1-65535",
    ),
]


@pytest.mark.parametrize(("overrides", "field", "needle"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_document_is_refused_naming_the_field(overrides, field, needle):
    data = deep(sample_document())
    for path, value in overrides.items():
        parts = path.split(".")
        target = data
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(value, dict) and isinstance(target.get(parts[-1]), dict):
            target[parts[-1]].update(value)
        elif isinstance(target, list):
            target[int(parts[-1])] = value
        else:
            target[parts[-1]] = value
    with pytest.raises(InvalidInput) as caught:
        load_document(data)
    fields = [p.field for p in caught.value.problems]
    assert field in fields, caught.value
    message = " ".join(str(p) for p in caught.value.problems if p.field == field)
    assert needle in message


def test_duplicate_peer_keys_refused():
    data = sample_document()
    data["peers"].append({"name": "gw-c", "site": "c", "public_key": KEY_B})
    with pytest.raises(InvalidInput) as caught:
        load_document(data)
    assert any(p.field == "peers[1].public_key" for p in caught.value.problems)


def test_two_active_gateways_of_one_site_refused():
    data = sample_document()
    data["peers"].append({"name": "gw-b2", "site": "b", "public_key": KEY_A})
    with pytest.raises(InvalidInput) as caught:
        load_document(data)
    assert any(p.field == "peers[1].role" and "two active gateways" in p.message for p in caught.value.problems)


def test_a_pair_with_one_active_and_one_standby_is_valid():
    data = sample_document()
    data["peers"].append({"name": "gw-b2", "site": "b", "public_key": KEY_A, "role": "standby"})
    doc = load_document(data)
    assert doc.active_peers() == {"b": doc.peers[0].name}


def test_malformed_yaml_gives_line_number():
    with pytest.raises(InvalidInput) as caught:
        parse_document("gateway:\n  name: gw-a\n  site: [a\n")
    assert "line" in caught.value.problems[0].field
    assert "malformed YAML" in caught.value.problems[0].message


def test_top_level_must_be_mapping():
    with pytest.raises(InvalidInput, match="expected a mapping"):
        parse_document("- a\n- b\n")


KEYS = [KEY_A, KEY_B, KEY_C]


def pairwise_reference(doc) -> list[tuple[str, str]]:
    """What the checks below found when they compared every pair and scanned every pool (the code
    before the sweep, grouping and bisection), as (field, start of message)."""
    found = []
    net = doc.networks[0]
    for i, left in enumerate(net.pools):
        for j in range(i + 1, len(net.pools)):
            if left.range.overlaps(net.pools[j].range):
                found.append((f"networks[0].pools[{j}].range", f"{net.pools[j].range} (site"))
    peers = {p.name: p for p in doc.peers}
    seen = set()
    for e, endpoint in enumerate(net.remote_endpoints):
        peer = peers.get(endpoint.gateway)
        if endpoint.ip in seen or peer is None or endpoint.ip not in net.cidr:
            seen.add(endpoint.ip)
            continue
        seen.add(endpoint.ip)
        if not any(p.site == peer.site for p in net.pools if endpoint.ip in p.range):
            found.append((f"networks[0].remote_endpoints[{e}].ip", f"{endpoint.ip} is not in a pool"))
    for i, left in enumerate(doc.peers):
        for j in range(i + 1, len(doc.peers)):
            right = doc.peers[j]
            if left.name == right.name:
                found.append((f"peers[{j}].name", f"'{right.name}' is used twice"))
            if left.public_key == right.public_key:
                found.append((f"peers[{j}].public_key", f"same key as peers[{i}]"))
            if left.site == right.site and left.role == right.role == "active":
                found.append((f"peers[{j}].role", f"site '{right.site}' has two active"))
    return found


@settings(max_examples=150, deadline=None)
@given(
    pools=st.lists(st.tuples(st.integers(1, 240), st.integers(0, 12), st.sampled_from("abc")), max_size=12),
    peers=st.lists(
        st.tuples(st.sampled_from(["gw-b", "gw-c", "gw-d"]), st.integers(0, 2), st.sampled_from("bc"), st.booleans()),
        min_size=1,
        max_size=8,
    ),
    endpoints=st.lists(st.tuples(st.integers(1, 254), st.sampled_from(["gw-b", "gw-c"])), max_size=20),
)
def test_the_fast_relation_checks_find_what_comparing_every_pair_found(pools, peers, endpoints):
    from cloudgw.model.document import GatewayDocument, check_document

    data = sample_document()
    data["networks"][0]["pools"] = [
        {"site": site, "range": f"192.168.1.{first}-192.168.1.{min(first + size, 253)}"} for first, size, site in pools
    ]
    data["networks"][0]["remote_endpoints"] = [{"ip": f"192.168.1.{ip}", "gateway": gw} for ip, gw in endpoints]
    data["peers"] = [
        {"name": name, "site": site, "public_key": KEYS[key], "role": "active" if active else "standby"}
        for name, key, site, active in peers
    ]
    doc = GatewayDocument.model_validate(data)
    wanted = pairwise_reference(doc)
    prefixes = ("networks[0].pools[", "networks[0].remote_endpoints[", "peers[")
    got = [
        (p.field, p.message)
        for p in check_document(doc)
        if p.field.startswith(prefixes)
        and (
            p.field.endswith((".name", ".public_key", ".role"))
            or "overlaps" in p.message
            or "not in a pool" in p.message
        )
    ]
    assert [field for field, _ in got] == [field for field, _ in wanted]
    assert all(message.startswith(start) for (_, message), (_, start) in zip(got, wanted, strict=True))
