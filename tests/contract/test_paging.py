"""Every list pages (limit + cursor) and filters on the server, the same on SQLite and PostgreSQL;
without ?limit a list is whole, as API v1 always answered; bad paging input is refused and named."""

from __future__ import annotations

import pytest

from cloudgw.errors import InvalidInput
from tests.contract.world import join, make_world


def walk(api, path: str, limit: int, **params) -> tuple[list[dict], list[int]]:
    """Every page of a list; returns the rows and the total each page reported."""
    rows, totals, cursor = [], [], None
    for _ in range(200):
        page = api.json("GET", path, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert len(page["items"]) <= limit
        rows.extend(page["items"])
        totals.append(page["total"])
        cursor = page["next_cursor"]
        if cursor is None:
            return rows, totals
    raise AssertionError("paging does not end")


def test_config_lists_page_by_name_and_filter(api, uid):
    for i in range(7):
        api.create("sites", {"name": f"p{i}-{uid}", "provider": "aws" if i % 2 else "generic"})
    rows, totals = walk(api, "/api/v1/sites", 3, q=uid)
    assert [r["name"] for r in rows] == [f"p{i}-{uid}" for i in range(7)] and set(totals) == {7}
    aws, totals = walk(api, "/api/v1/sites", 2, q=uid, provider="aws")
    assert [r["name"] for r in aws] == [f"p{i}-{uid}" for i in (1, 3, 5)] and set(totals) == {3}
    # a site deleted between two pages does not shift the next page (a cursor is a position)
    first = api.json("GET", "/api/v1/sites", params={"q": uid, "limit": 2})
    api.delete("sites", f"p1-{uid}")
    second = api.json("GET", "/api/v1/sites", params={"q": uid, "limit": 2, "cursor": first["next_cursor"]})
    assert [r["name"] for r in second["items"]] == [f"p2-{uid}", f"p3-{uid}"] and second["total"] == 6
    # no limit: the whole (filtered) list, as in v0.1
    whole = api.json("GET", "/api/v1/sites", params={"q": uid.upper()})
    assert len(whole["items"]) == whole["total"] == 6 and whole["next_cursor"] is None


def test_gateway_and_connection_filters(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential, _key = join(api, controller, world.gw_a)
    with controller.agent(credential) as agent:
        agent.heartbeat({"version": "test"})
    names = lambda page: [g["name"] for g in page["items"]]  # noqa: E731
    assert names(api.json("GET", "/api/v1/gateways", params={"q": uid, "state": "online"})) == [world.gw_a]
    assert names(api.json("GET", "/api/v1/gateways", params={"q": uid, "state": "pending"})) == [world.gw_b]
    assert names(api.json("GET", "/api/v1/gateways", params={"q": uid, "state": "offline"})) == []
    assert names(api.json("GET", "/api/v1/gateways", params={"site": world.b})) == [world.gw_b]
    pending = api.json("GET", "/api/v1/connections", params={"site": world.a, "state": "pending"})
    assert names(pending) == [f"c-{uid}"] and pending["items"][0]["health"]["state"] == "pending"
    assert api.json("GET", "/api/v1/connections", params={"site": world.a, "state": "up"})["total"] == 0
    pools = api.json("GET", "/api/v1/pools", params={"network": world.network, "site": world.b})
    assert names(pools) == [world.pool(world.b)] or [p["site"] for p in pools["items"]] == [world.b]


def test_endpoints_page_in_address_order_with_every_filter(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential_a, _ = join(api, controller, world.gw_a)
    credential_b, _ = join(api, controller, world.gw_b)
    with controller.agent(credential_a) as agent:
        agent.announce(
            world.network, [{"ip": f"192.168.1.{i}", "mac": f"02:aa:00:00:00:{i:02x}"} for i in range(4, 11)]
        )
    with controller.agent(credential_b) as agent:  # .30 lies outside b's pool: announced, not effective
        agent.announce(world.network, [{"ip": f"192.168.1.{i}"} for i in (11, 12, 13, 30)])
    rows, totals = walk(api, "/api/v1/endpoints", 4, network=world.network)
    assert [r["ip"] for r in rows] == [f"192.168.1.{i}" for i in (*range(4, 14), 30)] and set(totals) == {11}
    assert [r["site"] for r in rows[:7]] == [world.a] * 7 and rows[-1]["effective"] is False

    def ips(**params) -> list[str]:
        return [r["ip"] for r in walk(api, "/api/v1/endpoints", 2, network=world.network, **params)[0]]

    assert ips(site=world.b) == ["192.168.1.11", "192.168.1.12", "192.168.1.13", "192.168.1.30"]
    assert ips(gateway=world.gw_a, prefix="192.168.1.8/30") == ["192.168.1.8", "192.168.1.9", "192.168.1.10"]
    assert ips(state="ignored") == ["192.168.1.30"]
    assert ips(q="02:AA:00:00:00:0A") == ["192.168.1.10"]  # a MAC, any case
    assert ips(q="1.1") == ["192.168.1.10", "192.168.1.11", "192.168.1.12", "192.168.1.13"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/sites", {"limit": 0}, "limit"),
        ("/api/v1/sites", {"limit": 1001}, "limit"),
        ("/api/v1/sites", {"cursor": "%%%"}, "cursor"),
        ("/api/v1/endpoints", {"cursor": "WyJzaXRlcyIsImEiXQ"}, "cursor"),  # a sites cursor
        ("/api/v1/endpoints", {"prefix": "10.0.0.300/8"}, "prefix"),
        ("/api/v1/endpoints", {"state": "lost"}, "state"),
        ("/api/v1/gateways", {"state": "sleeping"}, "state"),
        ("/api/v1/audit", {"cursor": "x" * 600}, "cursor"),
        ("/api/v1/tokens", {"role": "root"}, "role"),
    ],
    ids=[
        "limit-0",
        "limit-big",
        "cursor-garbage",
        "cursor-other-list",
        "prefix",
        "endpoint-state",
        "gateway-state",
        "cursor-long",
        "role",
    ],
)
def test_bad_paging_input_is_refused_and_named(api, path, params, field):
    with pytest.raises(InvalidInput) as refused:  # the client's form of a 422
        api.json("GET", path, params=params)
    assert [p.field for p in refused.value.problems] == [field]
    assert all(p.message for p in refused.value.problems)


def test_tokens_and_audit_page(api, uid):
    for i in range(3):
        api.create("tokens", {"name": f"t{i}-{uid}", "role": "readonly"})
    rows, totals = walk(api, "/api/v1/tokens", 2, q=uid)
    assert [r["name"] for r in rows] == [f"t{i}-{uid}" for i in range(3)] and set(totals) == {3}
    for i in range(5):
        api.create("sites", {"name": f"au{i}-{uid}"})
    audit, _ = walk(api, "/api/v1/audit", 2, kind="site")
    mine = [r["name"] for r in audit if r["name"].endswith(uid)]
    assert mine == [f"au{i}-{uid}" for i in reversed(range(5))]  # newest first, nothing twice
    assert len({r["id"] for r in audit}) == len(audit)
