"""Every resource gets the same create/read/update/delete and permission tests (a generic table),
on SQLite and on PostgreSQL."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from cloudgw.client import ApiError, Client
from cloudgw.errors import InvalidInput, NotFound
from tests.contract.world import make_world


@dataclass
class Case:
    kind: str  # the API path
    prepare: Callable[[Client, str], None]  # create what the resource refers to
    body: Callable[[str], dict[str, Any]]
    name: Callable[[str], str]
    update: dict[str, Any]
    check: Callable[[dict[str, Any]], bool]  # the update took effect


def nothing(_api: Client, _uid: str) -> None:
    pass


def two_sites_and_network(api: Client, uid: str) -> None:
    api.create("sites", {"name": f"a-{uid}"})
    api.create("sites", {"name": f"b-{uid}"})
    api.create("networks", {"name": f"n-{uid}", "cidr": "10.20.0.0/24"})


CASES = [
    Case(
        "sites",
        nothing,
        lambda u: {"name": f"s-{u}", "provider": "aws"},
        lambda u: f"s-{u}",
        {"description": "Frankfurt"},
        lambda item: item["description"] == "Frankfurt",
    ),
    Case(
        "networks",
        nothing,
        lambda u: {"name": f"n-{u}", "cidr": "10.1.0.0/24"},
        lambda u: f"n-{u}",
        {"cidr": "10.1.0.0/23"},
        lambda item: item["cidr"] == "10.1.0.0/23",
    ),
    Case(
        "pools",
        two_sites_and_network,
        lambda u: {"name": f"p-{u}", "network": f"n-{u}", "site": f"a-{u}", "range": "10.20.0.1-10.20.0.9"},
        lambda u: f"p-{u}",
        {"range": "10.20.0.1-10.20.0.19"},
        lambda item: item["size"] == 19,
    ),
    Case(
        "gateways",
        two_sites_and_network,
        lambda u: {"name": f"g-{u}", "site": f"a-{u}", "endpoint": "203.0.113.1:51820"},
        lambda u: f"g-{u}",
        {"endpoint": "203.0.113.2:51820"},
        lambda item: item["endpoint"] == "203.0.113.2:51820",
    ),
    Case(
        "connections",
        two_sites_and_network,
        lambda u: {"name": f"c-{u}", "network": f"n-{u}", "site_a": f"a-{u}", "site_b": f"b-{u}"},
        lambda u: f"c-{u}",
        {"enabled": False, "mtu": 1380},
        lambda item: item["enabled"] is False and item["mtu"] == 1380 and item["health"]["state"] == "disabled",
    ),
]


def connected_with_gateway(api: Client, uid: str) -> None:
    make_world(api, uid, gateways=True, connect=True)


CASES += [
    Case(
        "egress",
        connected_with_gateway,
        lambda u: {"site": f"b-{u}", "network": f"n-{u}", "mode": "via", "via": f"a-{u}"},
        lambda u: f"b-{u}-n-{u}",
        {"mode": "none"},
        lambda item: item["mode"] == "none" and item["via"] is None,
    ),
    Case(
        "forwards",
        connected_with_gateway,
        lambda u: {
            "name": f"f-{u}",
            "gateway": f"gwb-{u}",
            "public_port": 8443,
            "target_ip": "192.168.1.12",
            "target_port": 443,
        },
        lambda u: f"f-{u}",
        {"target_port": 8443},
        lambda item: item["target_port"] == 8443,
    ),
]


def burst_world(api: Client, uid: str) -> None:
    make_world(api, uid, provider_b="lab", gateways=True, connect=True)


def burst_body(uid: str) -> dict[str, Any]:
    return {
        "name": f"bp-{uid}",
        "network": f"n-{uid}",
        "site": f"b-{uid}",
        "signal": {"kind": "pool", "pool": f"a-{uid}-n-{uid}"},
        "scale_out_above": 0.8,
        "scale_in_below": 0.3,
        "max_vms": 4,
        "template": {"image": "lab-vm", "size": "small"},
    }


CASES.append(
    Case(
        "bursts",
        burst_world,
        burst_body,
        lambda u: f"bp-{u}",
        {"max_vms": 6, "budget": {"instance_hours_per_day": 48}},
        lambda item: item["max_vms"] == 6 and item["budget"]["instance_hours_per_day"] == 48,
    )
)
IDS = [case.kind for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_create_read_update_delete(api, uid, case):
    case.prepare(api, uid)
    name = case.name(uid)
    created = api.create(case.kind, case.body(uid))
    assert created["name"] == name
    assert created["created_at"].endswith(("Z", "+00:00"))
    # the create's answer (made from the write's own row and snapshot) is what reading it back gives
    assert api.get(case.kind, name) == created
    assert name in [item["name"] for item in api.list(case.kind)]
    updated = api.update(case.kind, name, case.update)
    assert case.check(updated), updated
    assert case.check(api.get(case.kind, name))
    api.delete(case.kind, name)
    with pytest.raises(NotFound):
        api.get(case.kind, name)
    assert name not in [item["name"] for item in api.list(case.kind)]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_create_twice_is_a_conflict(api, uid, case):
    case.prepare(api, uid)
    api.create(case.kind, case.body(uid))
    response = api._http.post(f"/api/v1/{case.kind}", json=case.body(uid))
    assert response.status_code == 409
    assert response.json()["error"] == "refused"
    assert response.json()["problems"][0]["field"] in ("name", "site_b", "range")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_unknown_name_is_404_naming_it(api, uid, case):
    for method in ("GET", "PATCH", "DELETE"):
        response = api._http.request(method, f"/api/v1/{case.kind}/nope-{uid}", json={} if method == "PATCH" else None)
        assert response.status_code == 404
        assert f"nope-{uid}" in response.json()["problems"][0]["message"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_readonly_token_reads_but_cannot_write(api, controller, uid, case):
    case.prepare(api, uid)
    api.create(case.kind, case.body(uid))
    token = api.create("tokens", {"name": f"ro-{case.kind}-{uid}", "role": "readonly"})["token"]
    with controller.client(token) as readonly:
        assert readonly.get(case.kind, case.name(uid))["name"] == case.name(uid)
        for call in (
            lambda: readonly.create(case.kind, case.body(uid + "x")),
            lambda: readonly.update(case.kind, case.name(uid), case.update),
            lambda: readonly.delete(case.kind, case.name(uid)),
        ):
            with pytest.raises(ApiError) as caught:
                call()
            assert caught.value.status == 403 and "read-only" in str(caught.value)
    assert api.get(case.kind, case.name(uid))["name"] == case.name(uid)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize(
    "header",
    [None, "Bearer nonsense", "Bearer cgw_000000000000_" + "A" * 32, "Basic abc"],
    ids=["none", "malformed", "unknown", "wrong-scheme"],
)
def test_no_valid_token_is_401(controller, case, header):
    headers = {"Authorization": header} if header else {}
    response = httpx.get(
        f"{controller.url}/api/v1/{case.kind}", headers=headers, verify=ssl.create_default_context(cafile=controller.ca)
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert set(body) == {"error", "message", "reason"}  # the reason is a word, never the secret
    assert body["reason"] in {"missing", "malformed", "invalid"}


def test_update_with_unknown_field_is_refused_naming_it(api, uid):
    make_world(api, uid)
    with pytest.raises(InvalidInput) as caught:
        api.update("sites", f"a-{uid}", {"colour": "blue"})
    assert caught.value.problems[0].field == "colour"


def test_openapi_documents_every_resource(controller):
    spec = httpx.get(f"{controller.url}/openapi.json", verify=ssl.create_default_context(cafile=controller.ca)).json()
    for path in ("/api/v1/sites", "/api/v1/pools/{name}", "/api/v1/mapping/resolve", "/api/v1/agent/document"):
        assert path in spec["paths"]
    assert (
        httpx.get(f"{controller.url}/docs", verify=ssl.create_default_context(cafile=controller.ca)).status_code == 200
    )
