"""HA pairs through the API, on SQLite and PostgreSQL: priority and timing as configuration, the
active role as a lease (POST /api/v1/agent/role), and documents that follow the role."""

from __future__ import annotations

import threading

import pytest

from cloudgw.client.api import ApiError
from cloudgw.errors import InvalidInput
from tests.contract.world import join, make_world
from tests.helpers import wait_for


def make_pair(api, controller, uid, dead_ms=150):
    world = make_world(api, uid, gateways=True, connect=True)
    api.update("sites", world.a, {"ha": {"interval_ms": 50, "dead_ms": dead_ms}})
    second = f"gwa2-{uid}"
    api.create(
        "gateways",
        {
            "name": second,
            "site": world.a,
            "endpoint": "203.0.113.11:51820",
            "lan_addresses": ["192.168.1.252"],
            "priority": 50,
        },
    )
    creds = {}
    for gateway in (world.gw_a, second, world.gw_b):
        creds[gateway], _ = join(api, controller, gateway)
    return world, second, creds


def ask(controller, credential, role, epoch=0, reason=""):
    with controller.agent(credential) as agent:
        return agent.request_role(role, epoch, reason)


def test_pair_roles_lease_and_documents(api, controller, uid):
    world, second, creds = make_pair(api, controller, uid)
    site = api.get("sites", world.a)
    assert site["ha"] == {"interval_ms": 50, "dead_ms": 150, "failback": False, "addresses": []}
    assert api.get("gateways", second)["priority"] == 50

    first = ask(controller, creds[world.gw_a], "active", 1, "no active gateway in the site")
    assert first.granted and first.active == world.gw_a and first.epoch >= 1 and first.lease_s == pytest.approx(0.65)
    refused = ask(controller, creds[second], "active", 1, "no hello")
    assert not refused.granted and refused.active == world.gw_a and world.gw_a in refused.reason
    renewed = ask(controller, creds[world.gw_a], "active", first.epoch)
    assert renewed.granted and renewed.epoch == first.epoch

    # the peer's document names both, and the active one carries the site's addresses
    doc = api.document(world.gw_b)
    roles = {p["name"]: p["role"] for p in doc["peers"]}
    assert roles == {world.gw_a: "active", second: "standby"}
    partner_doc = api.document(second)
    assert partner_doc["gateway"]["role"] == "standby"
    assert [p["name"] for p in partner_doc["gateway"]["partners"]] == [world.gw_a]

    # the lease runs out when the active stops renewing: the standby's claim is granted then
    taken = wait_for(lambda: (a := ask(controller, creds[second], "active", 1, "no hello")).granted and a, 10)
    assert taken.epoch > first.epoch
    gateways = {g["name"]: g for g in api.list("gateways")}
    assert gateways[second]["role"] == "active" and gateways[second]["role_reason"] == "no hello"
    assert gateways[world.gw_a]["role"] == "standby" and second in gateways[world.gw_a]["role_reason"]
    doc = api.document(world.gw_b)
    assert {p["name"]: (p["role"], p["epoch"]) for p in doc["peers"]} == {
        world.gw_a: ("standby", taken.epoch),
        second: ("active", taken.epoch),
    }
    # the old active's renewal is refused: it must step down
    late = ask(controller, creds[world.gw_a], "active", first.epoch)
    assert not late.granted and late.active == second
    audit = api.json("GET", "/api/v1/audit", params={"limit": 50, "name": second})["items"]
    assert any(a["action"] == "role" and a["after"]["role"] == "active" for a in audit)

    # leaving the role: recorded, and the lease is free for the partner at once
    left = ask(controller, creds[second], "standby", taken.epoch, "failback to the preferred gateway")
    assert left.granted and left.role == "standby"
    back = ask(controller, creds[world.gw_a], "active", taken.epoch + 1, "failback")
    assert back.granted and back.epoch > taken.epoch


def test_a_site_with_one_gateway_is_always_active(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential, _ = join(api, controller, world.gw_b)
    answer = ask(controller, credential, "active", 0)
    assert answer.granted and answer.active == world.gw_b and answer.lease_s == 0
    assert api.get("gateways", world.gw_b)["role"] is None  # nothing recorded, nothing to show


def test_concurrent_claims_grant_one(api, controller, uid):
    world, second, creds = make_pair(api, controller, uid, dead_ms=1000)
    results = {}

    def claim(name):
        results[name] = ask(controller, creds[name], "active", 1, "race")

    threads = [threading.Thread(target=claim, args=(name,)) for name in (world.gw_a, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    granted = [name for name, answer in results.items() if answer.granted]
    assert len(granted) == 1, results
    roles = [g["role"] for g in api.list("gateways") if g["name"] in (world.gw_a, second)]
    assert roles.count("active") == 1


def test_bad_role_input_is_refused_and_changes_nothing(api, controller, uid):
    _world, second, creds = make_pair(api, controller, uid)
    with controller.agent(creds[second]) as agent:
        for body, field in (
            ({"role": "leader", "epoch": 1}, "role"),
            ({"role": "active", "epoch": -1}, "epoch"),
            ({"role": "active", "epoch": 1, "reason": "x" * 201}, "reason"),
        ):
            with pytest.raises(InvalidInput) as caught:
                agent.json("POST", "/api/v1/agent/role", json=body)
            assert [p.field for p in caught.value.problems] == [field]
    assert api.get("gateways", second)["role"] is None
    # an admin token is not a gateway: it cannot take a role
    with pytest.raises(ApiError) as caught:
        api.json("POST", "/api/v1/agent/role", json={"role": "active", "epoch": 1})
    assert caught.value.status == 403


def test_pairs_are_checked(api, controller, uid):
    world = make_world(api, uid, gateways=True)
    with pytest.raises(InvalidInput) as caught:
        api.create("gateways", {"name": f"x-{uid}", "site": world.a})  # no LAN address
    assert [p.field for p in caught.value.problems] == ["lan_addresses"]
    with pytest.raises(InvalidInput) as caught:
        api.create("gateways", {"name": f"y-{uid}", "site": world.a, "lan_addresses": ["192.168.1.250"], "priority": 0})
    assert "priority" in [p.field for p in caught.value.problems]
    with pytest.raises(InvalidInput) as caught:
        api.update("sites", world.a, {"ha": {"interval_ms": 500, "dead_ms": 1000}})
    assert "dead_ms" in str(caught.value)
    assert api.get("sites", world.a)["ha"] is None  # unchanged: the default timing
    for n in range(3):
        api.create("gateways", {"name": f"m{n}-{uid}", "site": world.a, "lan_addresses": [f"192.168.1.24{n}"]})
    with pytest.raises(InvalidInput) as caught:
        api.create("gateways", {"name": f"m9-{uid}", "site": world.a, "lan_addresses": ["192.168.1.249"]})
    assert caught.value.problems[0].conflict and "at most 4" in str(caught.value)
