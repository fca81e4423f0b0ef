"""The dashboard's Burst tab: the policy's last word, the chart of demand and VMs, the decisions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import shot, sign_in
from tests.burst.test_loop import TOPOLOGY
from tests.controllers import RunningController, start_controller
from tests.helpers import wait_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def bursting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningController]:
    data = tmp_path_factory.mktemp("browser-burst")
    running = start_controller(data, f"sqlite:///{data}/controller.db", burst_interval=0.3)
    try:
        with running.client() as api:
            api.json("PUT", "/api/v1/topology", json=TOPOLOGY)
            api.create(
                "bursts",
                {
                    "name": "web",
                    "network": "lab",
                    "site": "public",
                    "signal": {"kind": "pool", "pool": "private-lab"},
                    "scale_out_above": 0.8,
                    "scale_in_below": 0.3,
                    "max_vms": 2,
                    "template": {"image": "lab-vm", "size": "small"},
                },
            )
            wait_for(lambda: len(api.json("GET", "/api/v1/bursts/web/status")["series"]) >= 3, 30, what="3 passes")
        yield running
    finally:
        running.stop()


def test_burst_tab_shows_reason_chart_and_decisions(page, bursting):
    sign_in(page, bursting, bursting.admin_token)
    page.goto(bursting.url + "/#burst")
    reason = page.wait_for_selector('[data-testid="burst-reason"]:has-text("holding at 0")')
    assert "demand 0.00" in reason.inner_text()
    # demand 0 and no VMs: both lines lie on the axis (zero height, so "attached", not "visible")
    line = page.wait_for_selector('[data-testid="burst-demand-line"]', state="attached")
    assert line.get_attribute("d").count("L") >= 2  # one point a pass
    page.wait_for_selector('[data-testid="burst-vms-line"]', state="attached")
    row = page.wait_for_selector('[data-testid="burst-decisions"] tbody tr:has-text("< 0.3")')
    assert "holding at 0" in row.inner_text()
    assert page.inner_text('[data-testid="burst-vms"] tbody') == "none"
    shot(page, "dashboard-burst")
    # an admin pauses the policy from the tab: the loop then changes nothing, and says so
    page.click('[data-testid="burst-toggle"]:has-text("disable")')
    page.wait_for_selector('[data-testid="burst-reason"]:has-text("policy disabled")')
    with bursting.client() as api:
        assert api.get("bursts", "web")["enabled"] is False
    page.click('[data-testid="burst-toggle"]:has-text("enable")')
    page.wait_for_selector('[data-testid="burst-reason"]:has-text("holding at 0")')
