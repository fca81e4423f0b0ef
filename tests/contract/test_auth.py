"""Tokens, join and gateway credentials: every refusal, and nothing disclosed about other gateways."""

from __future__ import annotations

import datetime
import ssl
import time

import httpx
import pytest
from sqlalchemy import delete, update

from cloudgw.agent.keys import generate_private_key, public_key_of
from cloudgw.agent.link import ControllerLink, JoinRefused
from cloudgw.client import ApiError
from cloudgw.controller.auth import AUTH_CACHE_SECONDS
from cloudgw.controller.db.engine import make_engine
from cloudgw.controller.db.models import MetaRow, TokenRow
from tests.contract.world import join, make_world
from tests.helpers import wait_for


def _join_token(api, gateway, name=None, **extra):
    return api.create("tokens", {"name": name or f"join-{gateway}", "role": "join", "gateway": gateway, **extra})


def test_join_token_carries_the_ca_fingerprint_and_is_one_time(api, controller, uid, tmp_path):
    world = make_world(api, uid, gateways=True)
    token = _join_token(api, world.gw_a)["token"]
    assert token.endswith(controller.ca_fingerprint)
    link = ControllerLink(controller.url, tmp_path / "a", join_token=token)
    assert link.join(public_key_of(generate_private_key())) == world.gw_a
    assert (tmp_path / "a" / "controller.json").stat().st_mode & 0o077 == 0
    # the same token again, from another machine: refused
    other = ControllerLink(controller.url, tmp_path / "b", join_token=token)
    with pytest.raises(JoinRefused, match="already used"):
        other.join(public_key_of(generate_private_key()))


def test_wrong_ca_fingerprint_is_refused_before_anything_is_sent(api, controller, uid, tmp_path):
    world = make_world(api, uid, gateways=True)
    token = _join_token(api, world.gw_a)["token"]
    forged = token[:-64] + "0" * 64
    link = ControllerLink(controller.url, tmp_path, join_token=forged)
    with pytest.raises(JoinRefused, match="does not match the join token"):
        link.join(public_key_of(generate_private_key()))
    assert api.get("gateways", world.gw_a)["public_key"] is None  # the real token was not consumed either
    assert api.list("tokens") and any(
        t["name"] == f"join-{world.gw_a}" and t["used_at"] is None for t in api.list("tokens")
    )


def test_expired_join_token_is_refused(api, controller, uid, tmp_path):
    world = make_world(api, uid, gateways=True)
    created = _join_token(api, world.gw_a, ttl_hours=1)
    engine = make_engine(controller.settings.db)
    with engine.begin() as connection:  # an hour later
        connection.execute(
            update(TokenRow)
            .where(TokenRow.id == created["id"])
            .values(expires_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1))
        )
    engine.dispose()
    link = ControllerLink(controller.url, tmp_path, join_token=created["token"])
    with pytest.raises(JoinRefused, match="expired"):
        link.join(public_key_of(generate_private_key()))


def test_join_token_cannot_use_the_admin_api(api, controller, uid):
    world = make_world(api, uid, gateways=True)
    token = _join_token(api, world.gw_a)["token"]
    with controller.client(token) as joiner, pytest.raises(ApiError) as caught:
        joiner.list("sites")
    assert caught.value.status == 403


def test_gateway_credential_sees_only_its_own_document(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential_a, _ = join(api, controller, world.gw_a)
    join(api, controller, world.gw_b)
    with controller.agent(credential_a) as agent:
        document = agent.watch(-1, wait=0)
        assert document["gateway"]["name"] == world.gw_a
        for path in (
            "/api/v1/gateways",
            f"/api/v1/gateways/{world.gw_b}",
            f"/api/v1/gateways/{world.gw_b}/document",
            "/api/v1/endpoints",
            "/api/v1/tokens",
            "/api/v1/status",
        ):
            response = agent._http.get(path)
            assert response.status_code == 403, path
            assert world.gw_b not in response.text and world.b not in response.text
        # announcing goes to its own name, whatever the body says
        assert agent.announce(world.network, [{"ip": "192.168.1.5"}]).added == 1
    owners = {e["ip"]: e["gateway"] for e in api.endpoints(network=world.network)["items"]}
    assert owners == {"192.168.1.5": world.gw_a}


def test_rejoining_revokes_the_previous_credential(api, controller, uid):
    world = make_world(api, uid, gateways=True)
    first, _ = join(api, controller, world.gw_a)
    token = _join_token(api, world.gw_a, name=f"rejoin-{uid}")["token"]
    with controller.agent(token) as agent:
        second = agent.join(public_key_of(generate_private_key())).credential
    with controller.agent(first) as old:
        with pytest.raises(ApiError) as caught:
            old.watch(-1, wait=0)
        assert caught.value.status == 401
    with controller.agent(second) as new:
        assert new.watch(-1, wait=0)["gateway"]["name"] == world.gw_a


def test_deleted_token_stops_working(api, controller, uid):
    created = api.create("tokens", {"name": f"tmp-{uid}", "role": "admin"})
    with controller.client(created["token"]) as temporary:
        assert temporary.list("sites") is not None
        api.delete("tokens", created["name"])
        with pytest.raises(ApiError) as caught:
            temporary.list("sites")
        assert caught.value.status == 401


def test_readonly_cannot_see_or_make_tokens(api, controller, uid):
    token = api.create("tokens", {"name": f"ro-{uid}", "role": "readonly"})["token"]
    with controller.client(token) as readonly:
        for call in (
            lambda: readonly.list("tokens"),
            lambda: readonly.create("tokens", {"name": f"x-{uid}", "role": "admin"}),
        ):
            with pytest.raises(ApiError) as caught:
                call()
            assert caught.value.status == 403


def test_token_listing_never_shows_secrets(api, uid):
    created = api.create("tokens", {"name": f"s-{uid}", "role": "admin"})
    secret = created["token"].split("_")[2]
    listing = api.request("GET", "/api/v1/tokens").text
    assert secret not in listing and created["id"] in listing


def test_join_token_needs_an_existing_gateway(api, uid):
    response = api._http.post("/api/v1/tokens", json={"name": f"j-{uid}", "role": "join", "gateway": f"no-{uid}"})
    assert response.status_code == 422 and response.json()["problems"][0]["field"] == "gateway"


def test_ca_is_public_but_nothing_else_is(controller):
    context = ssl.create_default_context(cafile=controller.ca)
    assert "BEGIN CERTIFICATE" in httpx.get(f"{controller.url}/api/v1/agent/ca", verify=context).text
    assert httpx.get(f"{controller.url}/healthz", verify=context).json() == {"ok": True}
    assert httpx.get(f"{controller.url}/api/v1/agent/document", verify=context).status_code == 401


def test_token_revoked_through_another_replica_stops_working_here_within_seconds(api, controller, uid):
    """Another controller replica deletes a token (its write bumps the shared revision): this one
    forgets what it remembered at its next database poll, long before AUTH_CACHE_SECONDS."""
    created = api.create("tokens", {"name": f"elsewhere-{uid}", "role": "admin"})
    with controller.client(created["token"]) as temporary:
        assert temporary.list("sites") is not None  # now remembered
        engine = make_engine(controller.settings.db)
        with engine.begin() as connection:
            connection.execute(delete(TokenRow).where(TokenRow.id == created["id"]))
            connection.execute(update(MetaRow).where(MetaRow.id == 1).values(revision=MetaRow.revision + 1))
        engine.dispose()
        started = time.monotonic()

        def refused() -> bool:
            try:
                temporary.list("sites")
            except ApiError as exc:
                return exc.status == 401
            return False

        wait_for(refused, timeout=10, what="the revoked token to be refused")
        assert time.monotonic() - started < AUTH_CACHE_SECONDS
