"""Admins' mistakes and strangers' guesses: replacing the whole topology, failed authentication,
secret files, printed configuration, the OpenAPI description."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys

import pytest

from cloudgw.controller.bootstrap import initialise
from cloudgw.controller.db.engine import make_engine
from cloudgw.controller.settings import ControllerSettings
from tests.contract.world import make_world
from tests.controllers import start_controller
from tests.security.raw import call, fields


def test_an_empty_topology_deletes_nothing_without_prune_and_the_revision(controller, api, uid):
    make_world(api, uid, gateways=True, connect=True)
    before = api.json("GET", "/api/v1/topology")
    response = call(controller, "PUT", "/api/v1/topology", controller.admin_token, json={})
    assert response.status_code == 409 and "prune" in fields(response), response.text
    response = call(controller, "PUT", "/api/v1/topology", controller.admin_token, json={}, params={"prune": "true"})
    assert response.status_code == 409 and "expect_revision" in fields(response)
    after = api.json("GET", "/api/v1/topology")
    assert after == before  # nothing deleted, no revision bumped
    # additions alone need neither
    grown = {**{k: v for k, v in before.items() if k != "revision"}}
    grown["sites"] = [*grown["sites"], {"name": f"extra-{uid}"}]
    response = call(controller, "PUT", "/api/v1/topology", controller.admin_token, json=grown)
    assert response.status_code == 200, response.text


@pytest.fixture
def strict(tmp_path):
    running = start_controller(tmp_path, f"sqlite:///{tmp_path}/controller.db", auth_failures_per_minute=5)
    try:
        yield running
    finally:
        running.stop()


def test_failed_authentication_is_logged_counted_and_throttled(strict, caplog):
    guess = "cgw_0123456789ab_guessguessguessguessguessguessgu"
    with caplog.at_level(logging.WARNING, logger="cloudgw.controller"):
        codes = [call(strict, "GET", "/api/v1/sites", guess).status_code for _ in range(7)]
    assert codes[:4] == [401] * 4 and codes[-1] == 429
    lines = [r.getMessage() for r in caplog.records if "auth.failed" in r.getMessage()]
    assert lines and "source=127.0.0.1" in lines[0] and "reason=invalid" in lines[0]
    assert len(lines) == 1  # one line per address per 10 s, not one per guess
    assert not any(guess in r.getMessage() or guess[4:] in r.getMessage() for r in caplog.records)
    # a credential not yet remembered waits too (the address is blocked for a minute)
    assert call(strict, "GET", "/api/v1/sites", strict.admin_token).status_code == 429


def test_a_remembered_admin_is_not_locked_out_by_a_guesser_at_the_same_address(strict):
    for _ in range(2):  # the first call also loads the first snapshot, which renews the credential cache
        assert call(strict, "GET", "/api/v1/sites", strict.admin_token).status_code == 200  # remembered now
    for _ in range(8):
        call(strict, "GET", "/api/v1/sites", "cgw_0123456789ab_guessguessguessguessguessguessgu")
    assert call(strict, "GET", "/api/v1/sites", strict.admin_token).status_code == 200
    metrics = call(strict, "GET", "/metrics", strict.admin_token).text
    assert 'cloudgw_auth_failures_total{reason="invalid"}' in metrics


def test_anonymous_writes_are_refused_before_their_body_is_read(controller):
    body = b"{" + b" " * (4 << 20)  # never parsed: no credential
    response = call(controller, "POST", "/api/v1/sites", None, content=body)
    assert response.status_code in (401, 413)
    response = call(controller, "POST", "/api/v1/sites", None, content=b"{}")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_existing_secret_files_are_made_private(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    token_file = tmp_path / "admin.token"
    token_file.write_text("old")
    os.chmod(token_file, 0o644)
    settings = ControllerSettings(db=f"sqlite:///{data}/controller.db", data_dir=str(data))
    initialise(settings, token_file=str(token_file))
    os.chmod(data / "controller.db", 0o644)
    os.chmod(data / "ca.key", 0o644)
    initialise(settings)  # a second start, as after an upgrade
    engine = make_engine(settings.db)
    with engine.connect():
        pass
    engine.dispose()
    for path, _mode in ((data, 0o700), (token_file, 0o600), (data / "controller.db", 0o600), (data / "ca.key", 0o600)):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, (path, oct(path.stat().st_mode))


def test_printed_configuration_has_no_database_password():
    env = {**os.environ, "CLOUDGW_DB": "postgresql+psycopg://cloudgw:s3cr3t-pw@db.example/cloudgw"}
    out = subprocess.run(
        [sys.executable, "-m", "cloudgw", "controller", "serve", "--print-config"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "s3cr3t-pw" not in out and "cloudgw:***@db.example" in out


def test_openapi_documents_the_refusals(controller):
    spec = call(controller, "GET", "/openapi.json").json()
    operation = spec["paths"]["/api/v1/sites/{name}"]["patch"]
    assert {"401", "403", "404", "409", "422"} <= set(operation["responses"])
    assert "/docs" not in spec["paths"] and call(controller, "GET", "/docs").status_code == 200
