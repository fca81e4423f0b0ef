"""CLI lists page by default with a hint for the next page, `--all` streams every page, filters go
to the server, and `-o json` keeps the shape scripts read (an array; endpoints: one object)."""

from __future__ import annotations

import re

from tests.contract.world import join, make_world


def test_site_list_pages_with_a_hint_and_all_streams(cli, uid):
    for i in range(5):
        assert cli("site", "add", f"s{i}-{uid}", "--provider", "aws" if i < 2 else "generic").code == 0
    first = cli("site", "list", "--search", uid, "--limit", "2", "-o", "json")
    assert first.code == 0 and [s["name"] for s in first.json()] == [f"s0-{uid}", f"s1-{uid}"]
    hint = re.search(r"2 of 5 sites shown; next page: --cursor (\S+)", first.err)
    assert hint, first.err
    second = cli("site", "list", "--search", uid, "--limit", "2", "--cursor", hint.group(1), "-o", "json")
    assert [s["name"] for s in second.json()] == [f"s2-{uid}", f"s3-{uid}"]
    every = cli("site", "list", "--search", uid, "--all", "-o", "json")
    assert [s["name"] for s in every.json()] == [f"s{i}-{uid}" for i in range(5)] and "next page" not in every.err
    assert [s["name"] for s in cli("site", "list", "-q", uid, "--provider", "aws", "-o", "yaml").yaml()] == [
        f"s0-{uid}",
        f"s1-{uid}",
    ]
    table = cli("site", "list", "--search", uid, "--limit", "2", "--all")  # three pages, one header
    assert all(f"s{i}-{uid}" in table.out for i in range(5)) and table.out.count("PROVIDER") == 1
    assert cli("site", "list", "--limit", "0").code == 2  # out of range: a usage error
    bad = cli("site", "list", "--cursor", "nonsense")
    assert bad.code == 1 and "cursor" in bad.err and "next_cursor" in bad.err


def test_endpoint_list_filters_pages_and_streams_json(cli, controller, uid):
    with controller.client() as api:
        world = make_world(api, uid, gateways=True, connect=True)
        credential, _ = join(api, controller, world.gw_b)
    with controller.agent(credential) as agent:
        agent.announce(
            world.network, [{"ip": f"192.168.1.{i}", "mac": f"02:bb:00:00:00:{i:02x}"} for i in range(11, 21)]
        )
    page = cli("endpoint", "list", "--network", world.network, "--limit", "3")
    assert page.code == 0 and "192.168.1.13" in page.out and "192.168.1.14" not in page.out
    assert "3 of 10 endpoints shown" in page.err
    whole = cli("endpoint", "list", "--network", world.network, "--all", "-o", "json").json()
    assert [e["ip"] for e in whole["items"]] == [f"192.168.1.{i}" for i in range(11, 21)]
    assert whole["total"] == 10 and whole["next_cursor"] is None and whole["conflicts"] == []
    found = cli(
        "endpoint", "list", "--network", world.network, "--prefix", "192.168.1.16/30", "-q", "02:BB", "-o", "json"
    )
    assert [e["ip"] for e in found.json()["items"]] == ["192.168.1.16", "192.168.1.17", "192.168.1.18", "192.168.1.19"]
    assert cli("endpoint", "list", "--prefix", "nonsense").code == 1


def test_status_counts_everything_and_lists_the_first_rows(cli, controller, uid):
    with controller.client() as api:
        for i in range(55):
            api.create("sites", {"name": f"st{i:02d}-{uid}"})
            api.create("gateways", {"name": f"gw{i:02d}-{uid}", "site": f"st{i:02d}-{uid}"})
        total = api.json("GET", "/api/v1/gateways", params={"limit": 1})["total"]
    table = cli("status")
    assert table.code == 0
    assert f"50 of {total:,} gateways listed" in table.err and "cloudgw gateway list --all" in table.err
    counts = next(line for line in table.out.splitlines() if line.startswith("gateways:"))
    numbers = [int(part.split()[0].replace(",", "")) for part in counts.removeprefix("gateways:").split(", ")]
    assert sum(numbers) == total and "pending" in counts
    assert "more gateways pending" in table.out  # the ones beyond the first 50 are still counted
    assert len(cli("status", "-o", "json").json()["gateways"]) == total  # scripts get everything
    assert len(cli("status", "--limit", "3", "-o", "json").json()["gateways"]) == 3
