"""External sites and routed prefixes, pure parts: documents, kernel objects, the router's export."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from cloudgw.dataplane.kernelstate import Route
from cloudgw.dataplane.render import filters, peer_allowed_ips, render
from cloudgw.errors import InvalidInput
from cloudgw.mapping.documents import render_document
from cloudgw.mapping.export import commands, router_config, wg_quick
from cloudgw.model.document import load_document
from cloudgw.model.topologyfile import parse_file, to_topology
from tests.helpers import KEY_A, KEY_B, KEY_C, sample_document

TOPOLOGY = f"""version: 1
sites:
  - {{name: a, provider: openstack}}
  - {{name: branch, kind: external, routed: [10.50.0.0/16]}}
  - {{name: shop, kind: external}}
networks: [{{name: lab, cidr: 192.168.1.0/24}}]
pools:
  - {{network: lab, site: a, range: 192.168.1.1-192.168.1.10}}
  - {{network: lab, site: shop, range: 192.168.1.200-192.168.1.203}}
gateways:
  - {{name: gw-a, site: a, endpoint: "203.0.113.10:51820", lan_addresses: [192.168.1.254]}}
  - {{name: rtr, site: branch, endpoint: "198.51.100.50:51820", public_key: "{KEY_B}"}}
  - {{name: shop-rtr, site: shop, endpoint: "198.51.100.60:51820", public_key: "{KEY_C}"}}
connections:
  - {{network: lab, site_a: a, site_b: branch}}
  - {{network: lab, site_a: a, site_b: shop}}
"""


def topology():
    topo = to_topology(parse_file(TOPOLOGY))
    topo.gateways["gw-a"] = topo.gateways["gw-a"].__class__(**{**vars(topo.gateways["gw-a"]), "public_key": KEY_A})
    return topo


def test_a_routed_prefix_is_routed_into_the_tunnel_accepted_from_its_router_and_never_natted():
    data = sample_document()
    data["peers"][0]["routed"] = ["10.50.0.0/16"]
    doc = load_document(data)
    state = render(doc, KEY_A)
    route = state.routes[(254, IPv4Network("10.50.0.0/16"))]
    assert route == Route(IPv4Network("10.50.0.0/16"), "cgw0", IPv4Address("192.168.1.254"), mtu=route.mtu)
    assert IPv4Network("10.50.0.0/16") in peer_allowed_ips(doc)["gw-b"]
    rules = filters(doc)
    assert IPv4Network("10.50.0.0/16") in rules.internal  # traffic to it is never masqueraded
    assert any(r.first == IPv4Address("10.50.0.0") for r in rules.remote_sources)  # accepted from the tunnel


def test_a_routed_prefix_inside_a_stretched_network_is_refused():
    data = sample_document()
    data["peers"][0]["routed"] = ["192.168.1.128/25"]
    with pytest.raises(InvalidInput) as caught:
        load_document(data)
    assert caught.value.problems[0].field == "peers[0].routed[0]"


def test_peers_of_an_external_site_get_its_declared_pool_and_routed_prefix():
    doc = render_document(topology(), "gw-a", 1)
    endpoints = {str(e.ip): e.gateway for e in doc.networks[0].remote_endpoints}
    assert endpoints == {f"192.168.1.{n}": "shop-rtr" for n in range(200, 204)}  # declared, never learned
    peers = {p.name: p for p in doc.peers}
    assert peers["rtr"].routed == [IPv4Network("10.50.0.0/16")] and peers["shop-rtr"].routed == []
    load_document(doc.model_dump(mode="json"))


def test_the_router_export_holds_public_keys_and_addresses_only():
    config = router_config(topology(), "branch", 7)
    text = wg_quick(config)
    assert "PrivateKey" not in text and KEY_B not in text  # not even the router's own public key is needed
    assert f"PublicKey = {KEY_A}" in text and "Endpoint = 203.0.113.10:51820" in text
    assert "AllowedIPs = 192.168.1.1/32, 192.168.1.2/31, 192.168.1.4/30, 192.168.1.8/31, 192.168.1.10/32" in text
    assert "192.168.1.254/32" in text and "10.50.0.0/16" in text  # the peer's LAN address; the router forwards for
    assert "shop" not in text.split("[Peer]", 1)[1]  # the router peers only with sites it is connected to
    lines = commands(config).splitlines()
    assert f"wg set wgcgw0 peer {KEY_A} endpoint 203.0.113.10:51820 allowed-ips 192.168.1.1/32" in "\n".join(lines)
    assert "ip route replace 192.168.1.254/32 dev wgcgw0" in lines


def test_a_cloudgw_sites_routed_prefix_goes_through_the_router_on_its_lan():
    data = sample_document()
    data["gateway"].update({"routed": ["10.60.0.0/16"], "routed_via": "192.168.1.240"})
    doc = load_document(data)
    state = render(doc, KEY_A)
    route = state.routes[(254, IPv4Network("10.60.0.0/16"))]
    assert route.dev == "lan0" and route.via == IPv4Address("192.168.1.240")
    lan = dict(filters(doc).lan_sources)["lan0"]
    assert any(r.first == IPv4Address("10.60.0.0") and r.last == IPv4Address("10.60.255.255") for r in lan)
    assert IPv4Network("10.60.0.0/16") in filters(doc).internal
    data["gateway"]["routed_via"] = "10.9.9.9"  # not in any of its networks
    with pytest.raises(InvalidInput) as caught:
        load_document(data)
    assert caught.value.problems[0].field == "gateway.routed_via"


def test_routed_prefix_rules_for_cloudgw_and_external_sites():
    from cloudgw.model import rules
    from cloudgw.model.topology import Site

    topo = topology()
    routed = (IPv4Network("10.60.0.0/16"),)
    no_via = rules.check_site(topo, Site("a", "openstack", routed=routed), old_name="a")
    assert [p.field for p in no_via] == ["routed_via"] and "which one" in no_via[0].message
    assert (
        rules.check_site(topo, Site("a", "openstack", routed=routed, routed_via=IPv4Address("192.168.1.240")), "a")
        == []
    )
    in_pool = rules.check_site(topo, Site("a", "openstack", routed=routed, routed_via=IPv4Address("192.168.1.5")), "a")
    assert [p.field for p in in_pool] == ["routed_via"] and "pool" in in_pool[0].message
    external = rules.check_site(
        topo,
        Site("branch", kind="external", routed=(IPv4Network("10.50.0.0/16"),), routed_via=IPv4Address("192.168.1.240")),
        "branch",
    )
    assert [p.field for p in external] == ["routed_via"]
    # the site's own gateway gets the next hop; its peers the prefix
    topo.sites["a"] = Site("a", "openstack", routed=routed, routed_via=IPv4Address("192.168.1.240"))
    own = render_document(topo, "gw-a", 2)
    assert own.gateway.routed == list(routed) and own.gateway.routed_via == IPv4Address("192.168.1.240")
    assert {p.name: p.routed for p in render_document(topo, "rtr", 2).peers}["gw-a"] == list(routed)
