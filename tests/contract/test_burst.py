"""Burst policies as a resource: refusals name the field and change nothing, what a policy uses
cannot go from under it, and the topology file carries policies (the same on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from cloudgw.errors import InvalidInput
from tests.contract.test_crud import burst_body, burst_world


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"site": "nowhere"}, "site"),
        ({"network": "nowhere"}, "network"),
        ({"scale_in_below": 0.95}, "scale_in_below"),
        ({"signal": {"kind": "pool", "pool": "nope"}}, "signal.pool"),
        ({"signal": {"kind": "http", "url": "http://u:p@127.0.0.1/x"}}, "signal.url"),
        ({"budget": {"max_cost_per_hour": 1.0}}, "budget.prices"),
        ({"pool": "not-a-pool"}, "pool"),
        ({"template": {"image": "x"}}, "template.size"),
        ({"max_vms": 100000}, "max_vms"),
    ],
    ids=["site", "network", "hysteresis", "signal-pool", "url-password", "price-missing", "pool", "size", "max"],
)
def test_bad_policies_are_refused_naming_the_field_and_nothing_is_written(api, uid, change, field):
    burst_world(api, uid)
    before = len(api.list("bursts"))
    with pytest.raises(InvalidInput) as refused:
        api.create("bursts", {**burst_body(uid), **change})
    fields = [p.field for p in refused.value.problems]
    assert any(f == field or f.startswith(field) for f in fields), fields
    assert len(api.list("bursts")) == before


def test_a_generic_site_cannot_burst(api, uid):
    burst_world(api, uid)
    api.update("sites", f"b-{uid}", {"provider": "generic"})
    with pytest.raises(InvalidInput) as refused:
        api.create("bursts", burst_body(uid))
    assert "cannot launch machines" in str(refused.value)


def test_what_a_policy_uses_is_kept_until_cascade(api, uid):
    burst_world(api, uid)
    api.create("bursts", burst_body(uid))
    for kind, name, needle in (("sites", f"b-{uid}", "burst policies"), ("networks", f"n-{uid}", "burst policy")):
        with pytest.raises(InvalidInput) as refused:
            api.delete(kind, name)
        assert needle in str(refused.value)
    with pytest.raises(InvalidInput) as refused:
        api.delete("pools", f"a-{uid}-n-{uid}")  # the pool the signal reads
    assert f"bp-{uid}" in str(refused.value)
    with pytest.raises(InvalidInput):
        api.update("pools", f"a-{uid}-n-{uid}", {"name": f"renamed-{uid}"})
    api.update("sites", f"b-{uid}", {"name": f"b2-{uid}"})  # a site rename follows into the policy
    assert api.get("bursts", f"bp-{uid}")["site"] == f"b2-{uid}"
    api.delete("sites", f"b2-{uid}", cascade=True)
    assert f"bp-{uid}" not in [b["name"] for b in api.list("bursts")]


def test_the_topology_file_carries_policies(api, uid):
    burst_world(api, uid)
    api.create("bursts", burst_body(uid))
    exported = api.json("GET", "/api/v1/topology")
    exported.pop("revision")  # the export says which revision it is; a file to apply does not
    mine = [b for b in exported["bursts"] if b["name"] == f"bp-{uid}"]
    assert mine and mine[0]["signal"] == {"kind": "pool", "pool": f"a-{uid}-n-{uid}"}
    # the same file again changes nothing; a changed threshold is one update step
    again = api.json("PUT", "/api/v1/topology", json=exported, params={"dry_run": True})
    assert again["steps"] == []
    mine[0]["scale_out_above"] = 0.9
    plan = api.json("PUT", "/api/v1/topology", json=exported, params={"dry_run": True})
    assert [(s["op"], s["kind"], s["name"]) for s in plan["steps"]] == [("update", "bursts", f"bp-{uid}")]
    assert plan["steps"][0]["body"] == {"scale_out_above": 0.9}
