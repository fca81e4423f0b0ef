"""External sites through the API, on SQLite and PostgreSQL: a stock WireGuard router (no agent),
its routed prefix, the peers' documents, and `export-config`."""

from __future__ import annotations

import pytest

from cloudgw.agent.keys import generate_private_key, public_key_of
from cloudgw.errors import InvalidInput
from tests.contract.world import join, make_world


def prefix_of(uid: str) -> str:
    """Each test's own routed prefix: tests share one controller, and routed prefixes never overlap."""
    return f"10.{int(uid[:2], 16)}.{int(uid[2:4], 16)}.0/24"


def make_branch(api, controller, uid):
    routed = prefix_of(uid)
    world = make_world(api, uid, gateways=True, connect=True)
    credential, _ = join(api, controller, world.gw_a)
    branch, router = f"br-{uid}", f"rtr-{uid}"
    api.create("sites", {"name": branch, "kind": "external", "routed": [routed]})
    router_key = public_key_of(generate_private_key())  # made on the router; cloudgw gets the public half
    api.create(
        "gateways", {"name": router, "site": branch, "endpoint": "198.51.100.50:51820", "public_key": router_key}
    )
    api.create("connections", {"name": f"cb-{uid}", "network": world.network, "site_a": world.a, "site_b": branch})
    return world, branch, router, router_key, credential


def test_an_external_site_reaches_the_peers_documents_and_exports_its_router(api, controller, uid):
    world, branch, router, router_key, _ = make_branch(api, controller, uid)
    site = api.get("sites", branch)
    assert site["kind"] == "external" and site["routed"] == [prefix_of(uid)]
    doc = api.document(world.gw_a)
    peer = next(p for p in doc["peers"] if p["name"] == router)
    assert peer["public_key"] == router_key and peer["routed"] == [prefix_of(uid)]

    text = api.request("GET", f"/api/v1/sites/{branch}/export-config").text
    assert "[Interface]" in text and "ListenPort = 51820" in text and "PostUp = wg set %i private-key" in text
    assert "PrivateKey" not in text  # made on the router, never by the controller
    a_key = api.get("gateways", world.gw_a)["public_key"]
    assert f"PublicKey = {a_key}" in text and "Endpoint = 203.0.113.10:51820" in text
    assert "192.168.1.4/30" in text and "192.168.1.254/32" in text  # site a's pool and its gateway's address
    commands = api.request("GET", f"/api/v1/sites/{branch}/export-config", params={"format": "commands"}).text
    assert f"wg set wgcgw0 peer {a_key} endpoint 203.0.113.10:51820 allowed-ips" in commands
    assert "ip route replace 192.168.1.254/32 dev wgcgw0" in commands
    # no secret of any site: only public keys, and only of the router's peers
    for line in text.splitlines() + commands.splitlines():
        assert "cgw_" not in line and "cgwj_" not in line


def test_external_site_rules_refuse_and_change_nothing(api, controller, uid):
    world, branch, router, _, _ = make_branch(api, controller, uid)
    before = api.get("sites", branch)
    for body, field in (
        ({"routed": ["192.168.1.0/25"]}, "routed[0]"),  # inside the stretched network
        ({"kind": "cloudgw"}, "routed_via"),  # a cloudgw site needs the router on its LAN for them
    ):
        with pytest.raises(InvalidInput) as caught:
            api.update("sites", branch, body)
        assert caught.value.problems[0].field == field, caught.value.problems
    assert api.get("sites", branch) == before
    with pytest.raises(InvalidInput) as caught:  # a cloudgw gateway's key comes from its agent
        api.update("gateways", world.gw_b, {"public_key": public_key_of(generate_private_key())})
    assert caught.value.problems[0].field == "public_key"
    with pytest.raises(InvalidInput) as caught:  # one router per external site
        api.create("gateways", {"name": f"r2-{uid}", "site": branch, "lan_addresses": ["192.168.1.251"]})
    assert "already has its router" in caught.value.problems[0].message
    with pytest.raises(InvalidInput) as caught:  # it never joins
        api.create("tokens", {"name": f"j-{uid}", "role": "join", "gateway": router})
    assert "never joins" in caught.value.problems[0].message
    with pytest.raises(InvalidInput) as caught:  # another site's routed prefix may not overlap
        api.create("sites", {"name": f"o-{uid}", "kind": "external", "routed": [prefix_of(uid).replace("/24", "/25")]})
    assert caught.value.problems[0].conflict
    with pytest.raises(InvalidInput) as caught:  # export is for external sites only
        api.request("GET", f"/api/v1/sites/{world.a}/export-config")
    assert "configure themselves" in caught.value.problems[0].message


def test_the_router_key_can_be_replaced_and_peers_follow(api, controller, uid):
    world, _branch, router, _, _ = make_branch(api, controller, uid)
    new_key = public_key_of(generate_private_key())
    api.update("gateways", router, {"public_key": new_key})
    doc = api.document(world.gw_a)
    assert next(p for p in doc["peers"] if p["name"] == router)["public_key"] == new_key
