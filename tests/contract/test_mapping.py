"""The mapping service: announcements, the effective mapping, conflicts, resolve, validate, and the
documents and watch feed that carry it to gateways."""

from __future__ import annotations

import threading
import time

from prometheus_client.parser import text_string_to_metric_families

from tests.contract.world import join, make_world
from tests.helpers import wait_for


def test_document_carries_peer_key_pools_and_remote_endpoints(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential_a, key_a = join(api, controller, world.gw_a)
    credential_b, key_b = join(api, controller, world.gw_b)
    with controller.agent(credential_b) as agent_b:
        agent_b.announce(world.network, [{"ip": "192.168.1.11", "mac": "02:00:00:00:00:0b"}, {"ip": "192.168.1.12"}])
    with controller.agent(credential_a) as agent_a:
        doc = agent_a.watch(-1, wait=0)
    assert doc["gateway"]["name"] == world.gw_a and doc["gateway"]["wan_interface"] == "wan0"
    peer = doc["peers"][0]
    assert (peer["name"], peer["public_key"], peer["endpoint"]) == (world.gw_b, key_b, "203.0.113.20:51820")
    assert peer["lan_addresses"] == ["192.168.1.253"]
    network = doc["networks"][0]
    assert network["lan_interface"] == "lan0" and network["lan_address"] == "192.168.1.254"
    assert {p["site"] for p in network["pools"]} == {world.a, world.b}
    assert [(e["ip"], e["gateway"]) for e in network["remote_endpoints"]] == [
        ("192.168.1.11", world.gw_b),
        ("192.168.1.12", world.gw_b),
    ]
    # and the other side sees A as its peer, with no remote endpoints yet
    with controller.agent(credential_b) as agent_b:
        doc_b = agent_b.watch(-1, wait=0)
    assert doc_b["peers"][0]["public_key"] == key_a and doc_b["networks"][0]["remote_endpoints"] == []


def test_unjoined_peer_and_disabled_connection_are_left_out(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential_a, _ = join(api, controller, world.gw_a)
    with controller.agent(credential_a) as agent_a:
        assert agent_a.watch(-1, wait=0)["peers"] == []  # B has not joined: no key to peer with
        join(api, controller, world.gw_b)
        assert len(agent_a.watch(-1, wait=0)["peers"]) == 1
        api.update("connections", f"c-{uid}", {"enabled": False})
        doc = agent_a.watch(-1, wait=0)
    assert doc["peers"] == [] and doc["networks"] == []


def metric(api, name: str) -> float:
    text = api.request("GET", "/metrics").text
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    return samples[name]


def waiting(api) -> float:
    return metric(api, "cloudgw_watch_waiting")


def delivery_count(api) -> float:
    return metric(api, "cloudgw_watch_delivery_seconds_count")


def watch_while(agent, after: int, status_api, change) -> dict:
    """Long-poll in a thread; once the controller behind `status_api` reports it waiting, make
    `change`; return the document the watch got and how long it took."""
    result: dict = {}

    def watcher() -> None:
        began = time.monotonic()
        result["doc"] = agent.watch(after, wait=20)
        result["seconds"] = time.monotonic() - began

    thread = threading.Thread(target=watcher)
    thread.start()
    wait_for(lambda: waiting(status_api) >= 1, 10, what="the long-poll to be waiting")  # the scenario under test
    change()
    thread.join(timeout=25)
    return result


def test_watch_waits_then_returns_at_once_on_change(api, controller, uid):
    delivered_before = delivery_count(api)
    world = make_world(api, uid, gateways=True, connect=True)
    credential_a, _ = join(api, controller, world.gw_a)
    credential_b, _ = join(api, controller, world.gw_b)
    with controller.agent(credential_a) as agent_a:
        current = agent_a.watch(-1, wait=0)["revision"]
        started = time.monotonic()
        assert agent_a.watch(current, wait=1.0) is None  # nothing changed: 204 after the wait
        assert time.monotonic() - started >= 0.9

        def announce() -> None:
            with controller.agent(credential_b) as agent_b:
                agent_b.announce(world.network, [{"ip": "192.168.1.15"}])

        result = watch_while(agent_a, current, api, announce)
    assert result["doc"]["revision"] > current
    assert result["seconds"] < 5
    assert [e["ip"] for e in result["doc"]["networks"][0]["remote_endpoints"]] == ["192.168.1.15"]
    assert delivery_count(api) > delivered_before  # the woken watch was timed for the metric


def test_announcing_the_same_list_changes_nothing(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential_b, _ = join(api, controller, world.gw_b)
    with controller.agent(credential_b) as agent_b:
        first = agent_b.announce(world.network, [{"ip": "192.168.1.11"}])
        second = agent_b.announce(world.network, [{"ip": "192.168.1.11"}])
        gone = agent_b.announce(world.network, [])
    assert (first.added, second.added, second.revision) == (1, 0, first.revision)
    assert gone.removed == 1 and api.endpoints(network=world.network)["items"] == []


def test_conflict_is_visible_and_the_pool_decides(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential_a, _ = join(api, controller, world.gw_a)
    credential_b, _ = join(api, controller, world.gw_b)
    with controller.agent(credential_b) as agent_b:
        agent_b.announce(world.network, [{"ip": "192.168.1.11", "mac": "02:00:00:00:00:bb"}])
    with controller.agent(credential_a) as agent_a:  # A claims an address of B's pool too
        agent_a.announce(world.network, [{"ip": "192.168.1.11", "mac": "02:00:00:00:00:aa"}])
    listing = api.endpoints(network=world.network)
    assert listing["conflicts"] == [
        {"network": world.network, "ip": "192.168.1.11", "gateways": sorted([world.gw_a, world.gw_b])}
    ]
    effective = {(e["gateway"], e["effective"]) for e in listing["items"]}
    assert effective == {(world.gw_a, False), (world.gw_b, True)}
    resolution = api.resolve(world.network, "192.168.1.11")
    assert resolution["state"] == "effective" and resolution["gateway"] == world.gw_b
    assert resolution["mac"] == "02:00:00:00:00:bb" and "conflict" in resolution["reason"]
    assert len(resolution["announcements"]) == 2


def test_resolve_states(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential_a, _ = join(api, controller, world.gw_a)
    with controller.agent(credential_a) as agent_a:
        agent_a.announce(world.network, [{"ip": "192.168.1.5"}, {"ip": "192.168.1.13"}])
    assert api.resolve(world.network, "192.168.1.5")["state"] == "effective"
    not_allowed = api.resolve(world.network, "192.168.1.13")
    assert not_allowed["state"] == "not-allowed" and f"site '{world.b}'" in not_allowed["reason"]
    assert api.resolve(world.network, "192.168.1.14")["state"] == "pool-only"
    assert api.resolve(world.network, "192.168.1.100")["state"] == "unknown"


def test_validate_explains_why_a_source_is_dropped(api, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    allowed = api.validate(world.gw_a, "192.168.1.5")
    assert allowed["allowed"] is True
    refused = api.validate(world.gw_a, "192.168.1.15", network=world.network)
    assert refused["allowed"] is False
    assert f"belongs to site '{world.b}'" in refused["reason"] and world.gw_b in refused["reason"]
    assert api.validate(world.gw_a, "192.168.1.254")["allowed"] is True  # its own LAN address


def test_endpoint_search(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential_b, _ = join(api, controller, world.gw_b)
    with controller.agent(credential_b) as agent_b:
        agent_b.announce(world.network, [{"ip": "192.168.1.11", "mac": "02:00:00:00:00:11"}, {"ip": "192.168.1.17"}])
    assert [e["ip"] for e in api.endpoints(network=world.network, q="02:00:00:00:00:11")["items"]] == ["192.168.1.11"]
    assert len(api.endpoints(site=world.b)["items"]) == 2


def test_heartbeat_feeds_gateway_and_connection_health(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential_a, key_a = join(api, controller, world.gw_a)
    credential_b, key_b = join(api, controller, world.gw_b)
    assert api.get("connections", f"c-{uid}")["health"]["state"] == "down"  # joined, but silent
    now = time.time()
    with controller.agent(credential_a) as agent_a, controller.agent(credential_b) as agent_b:
        agent_a.heartbeat(
            {
                "version": "t",
                "revision": 5,
                "peers": [{"public_key": key_b, "last_handshake": now - 5, "rx_bytes": 100, "tx_bytes": 200}],
            }
        )
        agent_b.heartbeat(
            {
                "version": "t",
                "revision": 5,
                "peers": [{"public_key": key_a, "last_handshake": now - 7, "rx_bytes": 200, "tx_bytes": 100}],
            }
        )
    gateway = api.get("gateways", world.gw_a)
    assert gateway["online"] is True and gateway["applied_revision"] == 5
    health = api.get("connections", f"c-{uid}")["health"]
    assert health["state"] == "up" and 6 <= health["handshake_age_s"] < 30 and health["rx_bytes"] == 300


def test_a_change_through_another_replica_reaches_a_waiting_gateway(api, controller, uid, tmp_path):
    """Two controllers on one database (as replicas behind a load balancer share PostgreSQL): a
    gateway watching replica B learns of an announcement committed by replica A."""
    import shutil

    from tests.controllers import start_controller

    shutil.copytree(controller.settings.data_dir, tmp_path / "replica")  # replicas share the CA
    replica = start_controller(tmp_path / "replica", controller.settings.db, admin_token=controller.admin_token)
    try:
        world = make_world(api, uid, gateways=True, connect=True)
        credential_a, _ = join(api, controller, world.gw_a)
        credential_b, _ = join(api, controller, world.gw_b)
        with replica.agent(credential_a) as agent_a:
            current = agent_a.watch(-1, wait=0)["revision"]

            def announce() -> None:  # through the other replica
                with controller.agent(credential_b) as agent_b:
                    agent_b.announce(world.network, [{"ip": "192.168.1.16"}])

            with replica.client() as replica_api:
                result = watch_while(agent_a, current, replica_api, announce)
        assert result["doc"]["revision"] > current
        assert result["seconds"] < 5  # the replica polls the database once a second, not at the 20 s timeout
        assert [e["ip"] for e in result["doc"]["networks"][0]["remote_endpoints"]] == ["192.168.1.16"]
    finally:
        replica.stop()
