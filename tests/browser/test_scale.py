"""The dashboard at the scale of issue 20 (1,000 sites and gateways, 100,940 endpoints): tables hold
one page and page on the server, searches are answered by the server, live updates patch the rows on
screen, and the topology groups, finds and zooms. How long the tabs take to show their first rows and
answer a search is written to test-artifacts/adminview-browser.json; the goals are checked by
bench/adminview.py (docs/benchmarks.md), not asserted here."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.browser.conftest import ARTIFACTS, shot, sign_in
from tests.controllers import RunningController, start_controller
from tests.helpers import wait_for
from tests.scale_world import scale_topology, seed_reports, site_name

pytestmark = pytest.mark.browser
SITES, PER_SITE = 1000, 103  # 20 gateways never join: 980 x 103 = 100,940 endpoints
TOTAL = (SITES - SITES // 50) * PER_SITE
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningController]:
    data = tmp_path_factory.mktemp("browser-scale")
    db = f"sqlite:///{data}/controller.db"
    running = start_controller(data, db)
    try:
        with running.client() as api:
            api.json("PUT", "/api/v1/topology", json=scale_topology(SITES))
        assert seed_reports(db, SITES, PER_SITE, pending_every=50, offline_every=7) == TOTAL
        with running.client() as api:  # the controller loads what the "other replica" wrote (about 1.5 s)
            assert api.json("GET", "/api/v1/endpoints", params={"limit": 1})["total"] == TOTAL
        yield running
    finally:
        running.stop()


def rows(page, testid: str) -> list[str]:
    return page.eval_on_selector_all(f'[data-testid="{testid}"] tbody tr', "rows => rows.map(r => r.innerText)")


def test_mapping_pages_and_searches_on_the_server(page, big):
    sign_in(page, big, big.admin_token)
    started = time.monotonic()
    page.goto(big.url + "/#mapping")
    page.wait_for_selector(f'[data-testid="endpoints-table-pager"] [data-count]:has-text("of {TOTAL:,}")')
    TIMINGS["mapping: first rows shown (s)"] = round(time.monotonic() - started, 2)
    first = rows(page, "endpoints-table")
    assert len(first) == 50 and first[0].split("\t")[1] == "10.0.0.1"  # one page, in address order
    page.click('[data-testid="endpoints-table-pager"] [data-next]')
    page.wait_for_selector(f'[data-testid="endpoints-table-pager"] [data-count]:has-text("51–100 of {TOTAL:,}")')
    assert rows(page, "endpoints-table")[0].split("\t")[1] == "10.0.0.51"
    page.click('[data-testid="endpoints-table-pager"] [data-prev]')
    page.wait_for_selector('[data-testid="endpoints-table-pager"] [data-count]:has-text("1–50 of")')
    # a search the server answers: one site's MACs carry its index (02:00:00:c8:... is site 200)
    started = time.monotonic()
    page.fill('[data-testid="search"]', "02:00:00:c8:00:0")
    page.wait_for_selector('[data-testid="endpoints-table-pager"] [data-count]:text-is("1–16 of 16")')
    TIMINGS["mapping: search answered, 150 ms debounce included (s)"] = round(time.monotonic() - started, 2)
    found = rows(page, "endpoints-table")
    assert all(f"\tgw-{site_name(200)}\t" in r for r in found) and len(found) == 16
    page.select_option('[data-testid="endpoints-site"]', site_name(201))
    page.wait_for_selector('[data-testid="endpoints-table-pager"] [data-count]:text-is("none")')
    # the page never holds more than a page of rows, and live updates keep the same row elements
    page.fill('[data-testid="search"]', "")
    page.wait_for_selector(f'[data-testid="endpoints-table-pager"] [data-count]:has-text("of {PER_SITE}")')
    table = '[data-testid="endpoints-table"]'
    page.evaluate(f"document.querySelector('{table} tbody tr').dataset.marker = 'kept'")
    loads = int(page.get_attribute(table, "data-loads"))
    with big.client() as api:
        api.create("sites", {"name": "zz-new-site"})  # a change: every open page refreshes
    wait_for(lambda: int(page.get_attribute(table, "data-loads")) > loads, 10, what="the live update")
    assert (
        page.evaluate("document.querySelector('[data-testid=\"endpoints-table\"] tbody tr').dataset.marker") == "kept"
    )
    shot(page, "dashboard-mapping-large")


def test_gateways_filter_by_state_and_search(page, big):
    sign_in(page, big, big.admin_token)
    started = time.monotonic()
    page.goto(big.url + "/#gateways")
    page.wait_for_selector(f'[data-testid="gateways-table-pager"] [data-count]:has-text("of {SITES:,}")')
    TIMINGS["gateways: first rows shown (s)"] = round(time.monotonic() - started, 2)
    assert len(rows(page, "gateways-table")) == 50
    page.select_option('[data-testid="gateways-state"]', "pending")
    page.wait_for_selector(f'[data-testid="gateways-table-pager"] [data-count]:text-is("1–20 of {SITES // 50}")')
    assert all("\tno\t" in r for r in rows(page, "gateways-table"))
    page.select_option('[data-testid="gateways-state"]', "")
    started = time.monotonic()
    page.fill('[data-testid="gateways-search"]', "os-029")
    page.wait_for_selector('[data-testid="gateways-table-pager"] [data-count]:text-is("1–4 of 4")')
    TIMINGS["gateways: search answered, 150 ms debounce included (s)"] = round(time.monotonic() - started, 2)
    (ARTIFACTS / "adminview-browser.json").parent.mkdir(exist_ok=True)
    (ARTIFACTS / "adminview-browser.json").write_text(json.dumps({"endpoints": TOTAL, "gateways": SITES, **TIMINGS}))
    assert [r.split("\t")[0] for r in rows(page, "gateways-table")] == [f"gw-os-029{i}" for i in (0, 3, 6, 9)]


def test_topology_groups_finds_and_zooms(page, big):
    sign_in(page, big, big.admin_token)
    page.wait_for_selector(f'[data-testid="site-{site_name(SITES - 1)}"]', state="attached", timeout=60_000)
    groups = page.eval_on_selector_all(".group-name", "texts => texts.map(t => t.textContent)")
    assert "aws · 333 site(s)" in groups and "openstack · 333 site(s)" in groups and len(groups) == 3
    before = page.get_attribute('[data-testid="topology"]', "viewBox")
    page.fill('[data-testid="topology-search"]', site_name(123))
    page.wait_for_selector('[data-testid="topology-found"]:text-is("1 site(s)")')
    page.wait_for_selector(f'[data-testid="site-{site_name(123)}"].match')
    wait_for(lambda: page.get_attribute('[data-testid="topology"]', "viewBox") != before, 10, what="the zoom to it")
    page.wait_for_selector('[data-testid="details"] dl:has-text("endpoints")')
    assert f"{site_name(123)}" in page.inner_text('[data-testid="details"]')
    page.click('[data-testid="zoom-fit"]')
    wait_for(lambda: page.get_attribute('[data-testid="topology"]', "viewBox") == before, 10, what="the whole view")
    shot(page, "dashboard-topology-large")
