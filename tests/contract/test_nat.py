"""Egress rules and port forwards through the API: lifecycle, refusals, and the documents they make."""

from __future__ import annotations

import pytest

from cloudgw.errors import InvalidInput
from tests.contract.world import join, make_world, revision


def forward(world, name="web", **changes):
    body = {
        "name": f"{name}-{world.uid}",
        "gateway": world.gw_b,
        "protocol": "tcp",
        "public_port": 8080,
        "target_ip": "192.168.1.11",
        "target_port": 80,
    }
    return {**body, **changes}


def test_egress_lifecycle_and_documents(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential_a, _ = join(api, controller, world.gw_a)
    credential_b, _ = join(api, controller, world.gw_b)
    created = api.create("egress", {"site": world.b, "network": world.network, "mode": "via", "via": world.a})
    assert created["name"] == f"{world.b}-{world.network}"
    with controller.agent(credential_b) as agent_b, controller.agent(credential_a) as agent_a:
        doc_b = agent_b.watch(-1, wait=0)
        doc_a = agent_a.watch(-1, wait=0)
    assert doc_b["networks"][0]["egress"] == "via" and doc_b["networks"][0]["egress_via"] == world.gw_a
    assert doc_a["networks"][0]["transit"] == ["192.168.1.11-192.168.1.20"]
    api.update("egress", created["name"], {"mode": "none"})
    assert api.get("egress", created["name"])["via"] is None
    api.delete("egress", created["name"])
    with controller.agent(credential_a) as agent_a:
        assert agent_a.watch(-1, wait=0)["networks"][0]["transit"] == []


def test_forward_lifecycle_and_document(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential_b, _ = join(api, controller, world.gw_b)
    created = api.create("forwards", forward(world))
    assert created["public_address"] == "203.0.113.20:8080" and created["site"] == world.b
    with controller.agent(credential_b) as agent_b:
        doc = agent_b.watch(-1, wait=0)
    assert doc["forwards"] == [
        {"name": f"web-{uid}", "protocol": "tcp", "public_port": 8080, "target_ip": "192.168.1.11", "target_port": 80}
    ]
    api.update("forwards", f"web-{uid}", {"target_port": 8000})
    assert api.get("forwards", f"web-{uid}")["target_port"] == 8000
    api.delete("forwards", f"web-{uid}")
    assert f"web-{uid}" not in [f["name"] for f in api.list("forwards")]


REFUSALS = [
    ("port-out-of-range", lambda w: forward(w, public_port=70000), 422, "public_port"),
    ("unknown-endpoint", lambda w: forward(w, target_ip="192.168.1.5"), 422, "target_ip"),
    ("ssh-port", lambda w: forward(w, public_port=22), 409, "public_port"),
    ("tunnel-port", lambda w: forward(w, protocol="udp", public_port=51820), 409, "public_port"),
    ("unknown-gateway", lambda w: forward(w, gateway=f"nope-{w.uid}"), 422, "gateway"),
]


@pytest.mark.parametrize(("body", "status", "field"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_bad_forwards_are_refused(api, uid, body, status, field):
    world = make_world(api, uid, gateways=True, connect=True)
    before = revision(api)
    response = api._http.post("/api/v1/forwards", json=body(world))
    assert response.status_code == status, response.text
    assert field in [p["field"] for p in response.json()["problems"]]
    assert revision(api) == before


def test_duplicate_public_port_is_a_conflict(api, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    api.create("forwards", forward(world))
    response = api._http.post("/api/v1/forwards", json=forward(world, name="other", target_port=81))
    assert response.status_code == 409
    assert "already forwarded" in response.json()["problems"][0]["message"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (
            lambda w: {"site": w.b, "network": w.network, "mode": "via", "via": f"c-{w.uid}"},
            "via",
            "no enabled connection",
        ),
        (lambda w: {"site": w.b, "network": w.network, "mode": "via", "via": w.b}, "via", "through itself"),
        (lambda w: {"site": w.b, "network": w.network, "mode": "via"}, "via", "which site"),
        (lambda w: {"site": w.b, "network": w.network, "mode": "none", "via": w.a}, "via", "only used with mode via"),
        (lambda w: {"site": w.b, "network": w.network, "mode": "sideways"}, "mode", ""),
    ],
    ids=["no-connection", "itself", "missing-via", "via-without-mode", "bad-mode"],
)
def test_bad_egress_is_refused(api, uid, body, field, words):
    world = make_world(api, uid, gateways=True, connect=True)
    api.create("sites", {"name": f"c-{uid}"})
    before = revision(api)
    with pytest.raises(InvalidInput) as caught:
        api.create("egress", body(world))
    assert field in [p.field for p in caught.value.problems]
    assert words in " ".join(p.message for p in caught.value.problems)
    assert revision(api) == before


def test_what_an_egress_or_forward_depends_on_cannot_vanish(api, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    api.create("egress", {"site": world.b, "network": world.network, "mode": "via", "via": world.a})
    api.create("forwards", forward(world, target_ip="192.168.1.19"))
    with pytest.raises(InvalidInput, match="leaves to the Internet over this connection"):
        api.update("connections", f"c-{uid}", {"enabled": False})
    with pytest.raises(InvalidInput, match="leaves to the Internet over this connection"):
        api.delete("connections", f"c-{uid}")
    with pytest.raises(InvalidInput, match=r"targets 192\.168\.1\.19"):
        api.update("pools", world.pool(world.b), {"range": "192.168.1.11-192.168.1.15"})
    with pytest.raises(InvalidInput, match=r"targets 192\.168\.1\.19"):
        api.delete("pools", world.pool(world.b))
    with pytest.raises(InvalidInput, match="other sites leave through"):
        api.create("egress", {"site": world.a, "network": world.network, "mode": "none"})


def test_topology_file_carries_egress_and_forwards(api, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    api.create("egress", {"site": world.b, "network": world.network, "mode": "none"})
    api.create("forwards", forward(world))
    exported = api.json("GET", "/api/v1/topology")
    assert {"site": world.b, "network": world.network, "mode": "none"} in exported["egress"]
    assert any(f["name"] == f"web-{uid}" for f in exported["forwards"])
    exported.pop("revision")
    planned = api.json("PUT", "/api/v1/topology", json=exported, params={"dry_run": "true"})
    assert planned["steps"] == []
