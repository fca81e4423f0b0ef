"""The dashboard shows an HA pair: each gateway's role with its reason, and every role change in
the audit log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloudgw.agent.keys import generate_private_key, public_key_of
from tests.browser.conftest import shot, sign_in
from tests.controllers import RunningController, start_controller

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def paired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningController]:
    data = tmp_path_factory.mktemp("browser-ha")
    running = start_controller(data, f"sqlite:///{data}/controller.db")
    try:
        with running.client() as api:
            api.create("sites", {"name": "private", "provider": "openstack"})
            for name, address, priority in (
                ("private-gw", "192.168.1.254", 200),
                ("private-gw2", "192.168.1.252", 100),
            ):
                api.create(
                    "gateways",
                    {"name": name, "site": "private", "lan_addresses": [address], "priority": priority},
                )
                token = api.create("tokens", {"name": f"join-{name}", "role": "join", "gateway": name})["token"]
                with running.agent(token) as agent:
                    credential = agent.join(public_key_of(generate_private_key())).credential
                with running.agent(credential) as agent:
                    if name == "private-gw2":
                        assert agent.request_role(
                            "active", 1, "no hello from 'private-gw' for 1 s (LAN and WAN)"
                        ).granted
        yield running
    finally:
        running.stop()


def test_gateways_tab_shows_roles_and_the_audit_their_changes(page, paired):
    sign_in(page, paired, paired.admin_token)
    page.goto(paired.url + "/#gateways")
    cell = page.wait_for_selector('[data-testid="role-private-gw2"]')
    assert cell.inner_text() == "active"
    row = page.wait_for_selector('[data-testid="gateways-table"] tbody tr[data-key="private-gw2"]')
    assert "no hello from 'private-gw'" in row.inner_text() and "(p100)" in row.inner_text()
    shot(page, "dashboard-ha")
    page.goto(paired.url + "/#audit")
    change = page.wait_for_selector('[data-testid="audit-table"] tbody tr:has-text("role gateway private-gw2")')
    assert "active (epoch 1)" in change.inner_text() and "no hello from" in change.inner_text()
