"""Cloud identities, the cloud inventory and the provider leader, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address

import pytest

from cloudgw.controller.cloudsync import CloudSync, Leadership
from cloudgw.controller.db.engine import make_engine
from cloudgw.controller.state import State
from cloudgw.errors import InvalidInput
from tests import pg
from tests.contract.world import join, make_world

AWS = {"region": "eu-west-1", "subnet": "subnet-0abc", "gateway_eni": "eni-0def", "endpoint_url": "http://127.0.0.1:9"}


def test_a_cloud_block_is_stored_validated_and_cleared(api, uid):
    world = make_world(api, uid)
    updated = api.update("sites", world.b, {"aws": AWS})
    assert {k: v for k, v in updated["aws"].items() if v is not None} == AWS and api.get("sites", world.b)["aws"][
        "gateway_eni"
    ] == "eni-0def"
    exported = {s["name"]: s for s in api.json("GET", "/api/v1/topology")["sites"]}
    assert exported[world.b]["aws"]["subnet"] == "subnet-0abc"
    for bad, field in (
        ({"openstack": {"cloud": "x", "subnet": "s"}}, "openstack"),  # b is an aws site
        ({"aws": {**AWS, "region": "x" * 200}}, "aws.region"),
        ({"aws": {**AWS, "secret_access_key": "k"}}, "aws.secret_access_key"),
        ({"aws": {**AWS, "subnet": "subnet\x00"}}, "aws.subnet"),
    ):
        with pytest.raises(InvalidInput) as caught:
            api.update("sites", world.b, bad)
        assert any(field in p.field for p in caught.value.problems), caught.value.problems
    assert api.get("sites", world.b)["aws"] == updated["aws"]  # nothing changed by the refusals
    assert api.update("sites", world.b, {"aws": None})["aws"] is None


def test_the_cloud_inventory_reaches_only_the_sites_gateway(api, controller, uid, backend):
    world = make_world(api, uid, provider_b="aws", gateways=True, connect=True)
    join(api, controller, world.gw_a)
    join(api, controller, world.gw_b)
    api.update("sites", world.b, {"aws": AWS})
    state = State(make_engine(backend))
    sync = CloudSync(state)
    topo = state.snapshot().topo
    listed = {IPv4Address("192.168.1.15"): "02:00:00:00:00:15", IPv4Address("192.168.1.99"): None}  # .99: no pool
    sync._write_inventory(topo, world.b, listed)
    doc_b = api.document(world.gw_b)
    (network,) = doc_b["networks"]
    assert network["cloud_endpoints"] == [{"ip": "192.168.1.15", "mac": "02:00:00:00:00:15"}]
    assert all(not n.get("cloud_endpoints") for n in api.document(world.gw_a)["networks"])
    revision = state.snapshot().revision
    sync._write_inventory(state.snapshot().topo, world.b, listed)  # unchanged: no write
    assert state.snapshot().revision == revision
    audit = api.json("GET", "/api/v1/audit", params={"kind": "inventory", "limit": 5})["items"]
    assert audit[0]["name"] == f"{world.b}/{world.network}" and audit[0]["after"]["added"] == ["192.168.1.15"]


def test_one_provider_leader(backend, request):
    if backend.startswith("sqlite"):
        assert Leadership(State(make_engine(backend))).held()  # one process owns an SQLite file
        return
    url = pg.create_database(request.getfixturevalue("postgres"))  # not the shared controller's: it leads there
    first, second = Leadership(State(make_engine(url))), Leadership(State(make_engine(url)))
    try:
        assert first.held() and not second.held()
        assert first.held()  # still held, on the same connection
        # the provider and burst loops ask from threads of their own, at once: the one connection
        # must survive it (unguarded, it broke under load and the lock went with it)
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: first.held(), range(400)))
        assert all(answers) and not second.held()
        first.release()
        assert second.held()
        assert not first.held()
    finally:
        first.release()
        second.release()
