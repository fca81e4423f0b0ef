"""What a gateway (or an admin's typo) sends can never break another gateway or a controller view:
each case of the hardening issue, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from cloudgw.controller.db.models import GatewayRow
from tests.contract.world import join, make_world
from tests.security.raw import call, fields

BAD_ENDPOINTS = [
    "203.0.113.1:51820\n\nx=1",  # a newline would add keys to wireguard-go's UAPI transaction
    "gw..example.com:51820",  # an empty label: every peer agent died on UnicodeError
    "a" * 64 + ".example.com:51820",  # a label over 63 characters: the same
    "gw example.com:51820",
    "gw.exämple.com:51820",  # not ASCII (IDNs are written in punycode)
    "x" * 250 + ".com:51820",  # longer than the database column
    "203.0.113.300:51820",
    "gw.example.com:0",
]
VIEWS = ["/api/v1/gateways", "/api/v1/status", "/api/v1/connections", "/metrics", "/api/v1/topology"]


@pytest.mark.parametrize("endpoint", BAD_ENDPOINTS, ids=lambda e: repr(e[:24]))
def test_a_bad_endpoint_is_refused_by_the_api_the_file_and_the_join(controller, api, uid, endpoint):
    world = make_world(api, uid, gateways=True)
    response = call(
        controller, "PATCH", f"/api/v1/gateways/{world.gw_a}", controller.admin_token, json={"endpoint": endpoint}
    )
    assert response.status_code == 422 and "endpoint" in fields(response), response.text
    body = {"name": f"g2-{uid}", "site": world.a, "endpoint": endpoint}
    response = call(controller, "POST", "/api/v1/gateways", controller.admin_token, json=body)
    assert response.status_code == 422 and "endpoint" in fields(response)
    token = api.create("tokens", {"name": f"j-{uid}", "role": "join", "gateway": world.gw_b})["token"]
    from cloudgw.agent.keys import generate_private_key, public_key_of

    response = call(
        controller,
        "POST",
        "/api/v1/agent/join",
        token,
        json={"public_key": public_key_of(generate_private_key()), "endpoint": endpoint},
    )
    assert response.status_code == 422 and "endpoint" in fields(response)
    assert api.get("gateways", world.gw_a)["endpoint"] == "203.0.113.10:51820"  # nothing changed


def test_a_stored_invalid_endpoint_breaks_no_view_and_no_peer_document(controller, api, uid):
    """A row written before endpoints were checked (or by hand): peers get no endpoint for it."""
    world = make_world(api, uid, gateways=True, connect=True)
    credential_a, _ = join(api, controller, world.gw_a)
    join(api, controller, world.gw_b)
    state = controller.server.config.app.state.cloudgw  # type: ignore[attr-defined]
    with state.session() as session, session.begin():
        session.execute(update(GatewayRow).where(GatewayRow.name == world.gw_b).values(endpoint="gw\n\nx=1:51820"))
    api.update("sites", world.b, {"description": "bump the revision"})  # re-read the topology
    for path in VIEWS:
        assert call(controller, "GET", path, controller.admin_token).status_code == 200, path
    gateway = api.get("gateways", world.gw_b)
    assert gateway["endpoint"] is None and "not HOST:PORT" in gateway["last_error"]
    document = call(controller, "GET", "/api/v1/agent/document", credential_a, params={"wait": 0}).json()
    peer = next(p for p in document["peers"] if p["name"] == world.gw_b)
    assert peer.get("endpoint") is None


def heartbeat(controller, credential, body):
    return call(controller, "POST", "/api/v1/agent/heartbeat", credential, json=body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"peers": [{"public_key": "A" * 43 + "=", "last_handshake": "yesterday"}]}, "peers[0].last_handshake"),
        ({"peers": [{"public_key": "not a key"}]}, "peers[0].public_key"),
        ({"version": "v" * 41}, "version"),
        ({"last_error": "bad\x00byte"}, "last_error"),
        ({"counters": {"lan_spoofed": -1}}, "counters.lan_spoofed"),
        ({"peers": [{"public_key": "A" * 43 + "="}] * 1001}, "peers"),
        ({"revision": 2**63}, "revision"),
    ],
    ids=["wrong-type", "not-a-key", "long-version", "nul", "negative-counter", "too-many-peers", "huge-revision"],
)
def test_a_malformed_heartbeat_is_refused_and_the_views_stay_up(controller, api, uid, body, field):
    world = make_world(api, uid, gateways=True, connect=True)
    credential, _ = join(api, controller, world.gw_a)
    response = heartbeat(controller, credential, body)
    assert response.status_code == 422 and field in fields(response), response.text
    for path in VIEWS:
        assert call(controller, "GET", path, controller.admin_token).status_code == 200, path


def test_a_stored_malformed_heartbeat_reads_as_bad_not_as_a_500(controller, api, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    join(api, controller, world.gw_a)
    state = controller.server.config.app.state.cloudgw  # type: ignore[attr-defined]
    status = {"peers": [{"public_key": "x", "last_handshake": "yesterday"}], "revision": "r"}
    with state.session() as session, session.begin():
        session.execute(update(GatewayRow).where(GatewayRow.name == world.gw_a).values(status=status))
    for path in VIEWS:
        assert call(controller, "GET", path, controller.admin_token).status_code == 200, path
    assert "not valid" in api.get("gateways", world.gw_a)["last_error"]


def test_a_heartbeat_over_the_body_limit_is_refused_before_it_is_parsed(controller, api, uid):
    world = make_world(api, uid, gateways=True)
    credential, _ = join(api, controller, world.gw_a)
    big = b'{"last_error": "' + b"x" * (2 << 20) + b'"}'
    response = call(controller, "POST", "/api/v1/agent/heartbeat", credential, content=big)
    assert response.status_code == 413


def test_peer_keys_from_heartbeats_do_not_accumulate(controller, api, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential, _ = join(api, controller, world.gw_a)
    telemetry = controller.server.config.app.state.telemetry  # type: ignore[attr-defined]
    import base64

    for round_ in range(5):
        keys = [base64.b64encode(bytes([round_, i]) + bytes(30)).decode() for i in range(200)]
        assert heartbeat(controller, credential, {"peers": [{"public_key": k} for k in keys]}).status_code == 204
    series = [key for key in telemetry._series if key[0] == world.gw_a]
    assert len(series) == 200  # only what the last heartbeat reported


def test_a_gateway_announces_only_into_its_own_sites_networks(controller, api, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    other = make_world(api, uid + "x")
    credential, _ = join(api, controller, world.gw_a)
    body = {"network": other.network, "endpoints": [{"ip": "192.168.1.5"}]}
    response = call(controller, "PUT", "/api/v1/agent/endpoints", credential, json=body)
    assert response.status_code == 422 and "network" in fields(response)
    many = [{"ip": f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}"} for i in range(1000)]
    response = call(
        controller, "PUT", "/api/v1/agent/endpoints", credential, json={"network": world.network, "endpoints": many}
    )
    assert response.status_code == 422 and "endpoints" in fields(response)
    assert "room for 7" in response.text  # the site's pool holds 7 addresses


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("gateways", {"lan_addresses": [False, True, 3232235777]}, "lan_addresses[0]"),
        ("sites", {"description": "nul\x00"}, "description"),
        ("networks", {"cidr": 3232235777}, "cidr"),
    ],
    ids=["addresses-as-bools-and-ints", "nul-in-text", "cidr-as-int"],
)
def test_typed_fields_take_only_their_type(controller, api, uid, kind, body, field):
    world = make_world(api, uid, gateways=True)
    name = {"gateways": world.gw_a, "sites": world.a, "networks": world.network}[kind]
    response = call(controller, "PATCH", f"/api/v1/{kind}/{name}", controller.admin_token, json=body)
    assert response.status_code == 422 and any(f.startswith(field) for f in fields(response)), response.text


def test_nul_in_a_path_or_query_is_a_400_on_both_databases(controller):
    for path in ("/api/v1/sites/a%00b", "/api/v1/endpoints?network=a%00"):
        assert call(controller, "GET", path, controller.admin_token).status_code == 400


def test_long_names_never_reach_the_database_unchecked(controller, api, uid):
    long_site, long_net = "s" * 40 + uid, "n" * 40 + uid
    api.create("sites", {"name": long_site})
    api.create("networks", {"name": long_net, "cidr": "10.9.0.0/24"})
    response = call(
        controller,
        "POST",
        "/api/v1/pools",
        controller.admin_token,
        json={"network": long_net, "site": long_site, "range": "10.9.0.1-10.9.0.9"},
    )
    assert response.status_code == 422 and "longer than 63" in response.text  # default name too long
    gateway = ("g" * 55 + uid)[:63]
    api.create("gateways", {"name": gateway, "site": long_site})
    token = api.create("tokens", {"name": f"j-{uid}", "role": "join", "gateway": gateway})["token"]
    from cloudgw.agent.keys import generate_private_key, public_key_of

    with controller.agent(token) as agent:  # the credential's own name must fit the database
        assert agent.join(public_key_of(generate_private_key())).credential.startswith("cgw")
