"""A controller and 120 gateways in one process, no root: the real agent code, the real watch feed and
the in-memory data plane (tests/sim/harness.py). A change at the hub reaches every spoke's kernel
state; a change at a spoke reaches the hub and nobody else."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Network

import pytest

from cloudgw.client import AgentClient
from tests.controllers import start_controller
from tests.helpers import wait_for
from tests.sim.harness import SimulatedGateway, endpoints_of, topology

GATEWAYS = 120


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    data = tmp_path_factory.mktemp("sim")
    controller = start_controller(data, f"sqlite:///{data}/controller.db")
    gateways: dict[str, SimulatedGateway] = {}
    try:
        with controller.client() as admin:
            admin.json("PUT", "/api/v1/topology", json=topology(GATEWAYS))
            names = [f"gw-s{i:04d}" for i in range(GATEWAYS)]
            tokens = {
                n: admin.create("tokens", {"name": f"join-{n}", "role": "join", "gateway": n})["token"] for n in names
            }
        with ThreadPoolExecutor(max_workers=4) as pool:
            for gateway in pool.map(lambda n: SimulatedGateway(n, controller.url, data / "gw", tokens[n]), names):
                gateways[gateway.name] = gateway
        for gateway in gateways.values():
            gateway.source.start()
        yield controller, gateways
    finally:
        for gateway in gateways.values():
            gateway.source.stop()
        controller.stop()


def announce(controller, gateway: SimulatedGateway, index: int, count: int) -> int:
    with AgentClient(controller.url, token=gateway.link._credential, ca=controller.ca) as agent:
        return int(agent.announce("big", endpoints_of(index, count)).revision)


def has_route(gateway: SimulatedGateway, address: str) -> bool:
    return any(route.dst == IPv4Network(f"{address}/32") for route in gateway.dataplane.state.routes.values())


def test_a_change_at_the_hub_reaches_every_spoke(fleet):
    controller, gateways = fleet
    hub = gateways["gw-s0000"]
    started = time.monotonic()
    revision = announce(controller, hub, 0, 3)
    spokes = [g for name, g in gateways.items() if name != "gw-s0000"]
    wait_for(lambda: all(g.applied() >= revision for g in spokes), 45, what="every spoke to apply the change")
    address = endpoints_of(0, 3)[2]["ip"]
    assert all(has_route(g, address) for g in spokes)
    print(f"\none hub change applied by {len(spokes)} spokes in {time.monotonic() - started:.2f} s")


def test_a_change_at_a_spoke_reaches_the_hub_only(fleet):
    controller, gateways = fleet
    before = {name: g.applied() for name, g in gateways.items()}
    revision = announce(controller, gateways["gw-s0042"], 42, 2)
    hub = gateways["gw-s0000"]
    wait_for(lambda: hub.applied() >= revision, 30, what="the hub to apply the spoke's endpoints")
    assert has_route(hub, endpoints_of(42, 2)[1]["ip"])
    with controller.client() as admin:
        bumped = {g["name"] for g in admin.list("gateways") if g["doc_revision"] == revision}
    assert bumped == {"gw-s0000"}  # spokes do not see each other: exactly one document changed
    others = [name for name, g in gateways.items() if name != "gw-s0000" and g.applied() != before[name]]
    assert others == []
