"""Every refusal names the field and the reason, answers 4xx, and writes nothing (the revision and
the resources are unchanged)."""

from __future__ import annotations

import pytest

from cloudgw.errors import InvalidInput
from tests.contract.world import make_world, revision

REFUSALS = [
    # (id, kind, body builder, status, field, words in the message)
    (
        "overlapping-pools",
        "pools",
        lambda w: {"network": w.network, "site": w.a, "range": "192.168.1.15-192.168.1.30"},
        409,
        "range",
        "overlaps pool",
    ),
    (
        "pool-outside-network",
        "pools",
        lambda w: {"name": f"x-{w.uid}", "network": w.network, "site": w.a, "range": "10.0.0.1-10.0.0.9"},
        422,
        "range",
        "outside network",
    ),
    (
        "aws-reserved-first-four",
        "pools",
        lambda w: {"name": f"x-{w.uid}", "network": w.network, "site": w.b, "range": "192.168.1.1-192.168.1.3"},
        422,
        "range",
        "reserved by AWS",
    ),
    (
        "aws-reserved-last",
        "pools",
        lambda w: {"name": f"x-{w.uid}", "network": w.network, "site": w.b, "range": "192.168.1.250-192.168.1.255"},
        422,
        "range",
        "reserved by AWS",
    ),
    (
        "pool-unknown-site",
        "pools",
        lambda w: {"name": f"x-{w.uid}", "network": w.network, "site": f"zz-{w.uid}", "range": "192.168.1.40"},
        422,
        "site",
        "unknown site",
    ),
    (
        "pool-unknown-network",
        "pools",
        lambda w: {"name": f"x-{w.uid}", "network": f"zz-{w.uid}", "site": w.a, "range": "192.168.1.40"},
        422,
        "network",
        "unknown network",
    ),
    (
        "gateway-address-of-other-site",
        "gateways",
        lambda w: {"name": f"g-{w.uid}", "site": w.a, "lan_addresses": ["192.168.1.12"]},
        422,
        "lan_addresses[0]",
        "is in pool",
    ),
    (
        "gateway-unknown-site",
        "gateways",
        lambda w: {"name": f"g-{w.uid}", "site": f"zz-{w.uid}"},
        422,
        "site",
        "unknown site",
    ),
    (
        "gateway-bad-endpoint",
        "gateways",
        lambda w: {"name": f"g-{w.uid}", "site": w.a, "endpoint": "203.0.113.1"},
        422,
        "endpoint",
        "no port",
    ),
    (
        "connection-unknown-network",
        "connections",
        lambda w: {"network": f"zz-{w.uid}", "site_a": w.a, "site_b": w.b},
        422,
        "network",
        "unknown network",
    ),
    (
        "connection-same-site",
        "connections",
        lambda w: {"network": w.network, "site_a": w.a, "site_b": w.a},
        422,
        "site_b",
        "two different sites",
    ),
    (
        "connection-mtu",
        "connections",
        lambda w: {"network": w.network, "site_a": w.a, "site_b": w.b, "mtu": 1000},
        422,
        "mtu",
        "outside 1280-9000",
    ),
    (
        "network-flood-in-l3",
        "networks",
        lambda w: {"name": f"l2-{w.uid}", "cidr": "10.9.0.0/24", "mode": "l3", "flood": True},
        422,
        "flood",
        "an L2 setting",
    ),
    ("network-bad-cidr", "networks", lambda w: {"name": f"x-{w.uid}", "cidr": "10.9.0.1/24"}, 422, "cidr", ""),
    ("bad-name", "sites", lambda w: {"name": "Not_A_Name"}, 422, "name", "lower-case"),
    ("unknown-field", "sites", lambda w: {"name": f"x-{w.uid}", "colour": "red"}, 422, "colour", "unknown field"),
    ("bad-provider", "sites", lambda w: {"name": f"x-{w.uid}", "provider": "azure"}, 422, "provider", ""),
]


def stored(api, kind):
    """What is written (live health fields left out)."""
    return sorted((item["name"], item["updated_at"]) for item in api.list(kind))


@pytest.mark.parametrize(
    ("kind", "body", "status", "field", "words"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_refusal_names_field_and_writes_nothing(api, uid, kind, body, status, field, words):
    world = make_world(api, uid)
    before_revision, before_items = revision(api), stored(api, kind)
    response = api._http.post(f"/api/v1/{kind}", json=body(world))
    assert response.status_code == status, response.text
    problems = response.json()["problems"]
    assert field in [p["field"] for p in problems], problems
    assert words in " ".join(p["message"] for p in problems if p["field"] == field)
    assert revision(api) == before_revision
    assert stored(api, kind) == before_items


def test_deleting_a_site_with_connections_needs_cascade(api, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    before = revision(api)
    with pytest.raises(InvalidInput) as caught:
        api.delete("sites", world.a)
    assert caught.value.problems[0].field == "name" and f"c-{uid}" in caught.value.problems[0].message
    assert revision(api) == before and api.get("sites", world.a)
    api.delete("sites", world.a, cascade=True)
    names = {kind: [item["name"] for item in api.list(kind)] for kind in ("sites", "connections", "pools", "gateways")}
    assert world.a not in names["sites"] and f"c-{uid}" not in names["connections"]
    assert world.pool(world.a) not in names["pools"] and world.gw_a not in names["gateways"]
    assert world.b in names["sites"] and world.gw_b in names["gateways"]  # the other side is untouched


def test_network_shrink_that_would_orphan_a_pool_is_refused(api, uid):
    world = make_world(api, uid)
    with pytest.raises(InvalidInput) as caught:
        api.update("networks", world.network, {"cidr": "192.168.1.0/29"})
    assert "would fall outside" in caught.value.problems[0].message
    assert api.get("networks", world.network)["cidr"] == "192.168.1.0/24"


def test_a_second_gateway_for_a_site_needs_its_own_lan_address(api, uid):
    world = make_world(api, uid, gateways=True)
    with pytest.raises(InvalidInput) as caught:
        api.create("gateways", {"name": f"g2-{uid}", "site": world.a})
    assert caught.value.problems[0].field == "lan_addresses" and "HA pair" in caught.value.problems[0].fix
    assert [g["name"] for g in api.list("gateways", site=world.a)] == [world.gw_a]


def test_changing_a_sites_provider_rechecks_its_pools(api, uid):
    world = make_world(api, uid, provider_b="generic")
    api.create("sites", {"name": f"c-{uid}"})
    api.create("pools", {"network": world.network, "site": f"c-{uid}", "range": "192.168.1.1-192.168.1.3"})
    with pytest.raises(InvalidInput) as caught:
        api.update("sites", f"c-{uid}", {"provider": "aws"})
    assert caught.value.problems[0].field == "provider" and "reserved by AWS" in caught.value.problems[0].message
    assert api.get("sites", f"c-{uid}")["provider"] == "generic"


def test_audit_records_who_changed_what(api, uid):
    make_world(api, uid)
    api.update("sites", f"a-{uid}", {"description": "changed"})
    rows = api.json("GET", "/api/v1/audit", params={"kind": "site", "limit": 20})["items"]
    row = next(r for r in rows if r["name"] == f"a-{uid}" and r["action"] == "update")
    assert row["actor"] == "admin"
    assert row["before"]["description"] == "" and row["after"]["description"] == "changed"
    assert row["revision"] > 0
