"""The burst decision on a test clock: thresholds with hysteresis, warm-up and cool-down, bounds,
budget; a noisy signal never flaps; the policy spec refuses what cannot work, naming the field."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from pydantic import ValidationError

from cloudgw.model.burst import BurstSpec
from cloudgw.model.burstplan import Memory, Vm, cost_cap, decide, instance_hours, to_remove


def spec(**changes) -> BurstSpec:
    base = {
        "name": "web",
        "network": "lab",
        "site": "public",
        "signal": {"kind": "http", "url": "http://127.0.0.1:9/load"},
        "scale_out_above": 0.8,
        "scale_in_below": 0.3,
        "min_vms": 0,
        "max_vms": 6,
        "step": 2,
        "warmup": 60,
        "cooldown": 300,
        "template": {"image": "ami-0123", "size": "t3.small"},
    }
    return BurstSpec.model_validate({**base, **changes})


def running(n: int, start: float = 0.0) -> list[Vm]:
    return [Vm(f"vm{i}", "running", start + i) for i in range(n)]


@pytest.mark.parametrize(
    ("changes", "demand", "vms", "memory", "now", "hours", "action", "change", "reason"),
    [
        ({}, 0.91, 2, Memory(above_since=0), 60, 0, "out", 2, "demand 0.91 > 0.8 for 60 s: +2 VMs"),
        ({}, 0.91, 2, Memory(above_since=10), 60, 0, "hold", 0, "demand 0.91 > 0.8 for 50 s of 60: holding at 2"),
        ({}, 0.91, 5, Memory(above_since=0), 60, 0, "out", 1, "demand 0.91 > 0.8 for 60 s: +1 VM"),
        ({}, 0.91, 6, Memory(above_since=0), 60, 0, "hold", 0, "demand 0.91 > 0.8, at the maximum (6): holding at 6"),
        (
            {"budget": {"instance_hours_per_day": 24}},
            0.91,
            6,
            Memory(above_since=0),
            60,
            24.0,
            "hold",
            0,
            "budget reached (24.0 of 24 instance-hours today): holding at 6",
        ),
        (
            {"budget": {"max_cost_per_hour": 0.1, "prices": {"t3.small": 0.0208}}},
            0.95,
            4,
            Memory(above_since=0),
            60,
            0,
            "hold",
            0,
            "demand 0.95 > 0.8, at the cost cap (4): holding at 4",
        ),
        (
            {"budget": {"max_cost_per_hour": 0.05, "prices": {"t3.small": 0.0208}}},
            0.5,
            4,
            Memory(),
            0,
            0,
            "in",
            -2,
            "above the 2 VMs the cost cap pays for: -2 VMs",
        ),
        ({}, 0.1, 3, Memory(below_since=0), 300, 0, "in", -2, "demand 0.10 < 0.3 for 300 s: -2 VMs"),
        (
            {"min_vms": 2},
            0.1,
            2,
            Memory(below_since=0),
            300,
            0,
            "hold",
            0,
            "demand 0.10 < 0.3, at the minimum (2): holding at 2",
        ),
        ({"min_vms": 2}, 0.5, 0, Memory(), 0, 0, "out", 2, "below the minimum of 2: +2 VMs"),
        ({"max_vms": 1}, 0.5, 3, Memory(), 0, 0, "in", -2, "above the maximum of 1: -2 VMs"),
        ({}, 0.5, 3, Memory(above_since=0), 60, 0, "hold", 0, "demand 0.50 between 0.3 and 0.8: holding at 3"),
    ],
    ids=[
        "out-after-warmup",
        "out-waits-warmup",
        "out-up-to-max",
        "at-max",
        "budget-hours",
        "cost-cap-holds",
        "cost-cap-removes",
        "in-after-cooldown",
        "in-stops-at-min",
        "up-to-min",
        "down-to-max",
        "in-band",
    ],
)
def test_decisions(changes, demand, vms, memory, now, hours, action, change, reason):
    decision = decide(spec(**changes), demand, None, running(vms), memory, now, hours)
    assert (decision.action, decision.change, decision.reason) == (action, change, reason)


def test_an_unreadable_signal_changes_nothing_and_restarts_the_timers():
    decision = decide(spec(), None, "connection refused", running(3), Memory(above_since=0, last_action=5), 600)
    assert (decision.action, decision.change) == ("error", 0)
    assert decision.reason == "signal unreadable (connection refused): holding at 3"
    assert decision.memory == Memory(last_action=5)
    assert decide(spec(), math.nan, None, running(3), Memory(), 0).action == "error"


def test_draining_vms_do_not_count_and_the_newest_go_first():
    vms = [Vm("old", "running", 10), Vm("new", "running", 30), Vm("booting", "pending", 30), Vm("gone", "draining", 40)]
    assert decide(spec(), 0.5, None, vms, Memory(), 0).reason.endswith("holding at 3")
    assert [vm.name for vm in to_remove(vms, 2)] == ["booting", "new"]


def run(policy: BurstSpec, signal, seconds: int, every: int = 5) -> list[tuple[float, int]]:
    """Drive the loop with a test clock: a reading every `every` s; VMs appear and go at once."""
    memory, count, actions = Memory(), 0, []
    for now in range(0, seconds, every):
        decision = decide(policy, signal(now), None, running(count), memory, now)
        memory = decision.memory
        if decision.change:
            count += decision.change
            actions.append((now, decision.change))
    return actions


@pytest.mark.parametrize("seed", range(5))
def test_a_noisy_signal_around_the_threshold_acts_at_most_as_hysteresis_allows(seed):
    noise = random.Random(seed)
    policy = spec(warmup=60, cooldown=120, max_vms=50)
    # ten minutes of demand jittering +-0.05 around the scale-out threshold, read every 5 s
    actions = run(policy, lambda _t: 0.8 + noise.uniform(-0.05, 0.05), 600)
    assert all(change > 0 for _, change in actions)  # it never scales in: 0.75 is far above 0.3
    # an action needs 60 s above 0.8 without a dip: at 50 % odds a reading, (1/2)^12 per window
    assert len(actions) <= 600 // 60
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(actions)]
    assert all(gap >= 60 for gap in gaps)


def test_a_signal_between_the_thresholds_never_acts_and_a_step_change_acts_once_per_window():
    wobble = random.Random(7)
    assert run(spec(), lambda _t: wobble.uniform(0.31, 0.79), 3600) == []
    # demand jumps above and stays: +2 after 60 s, then each window starts at the next reading
    # (5 s later): until the maximum (6), then holds
    assert run(spec(), lambda t: 0.95 if t >= 100 else 0.5, 600) == [(160, 2), (225, 2), (290, 2)]
    # and falls: -2 every 300 s of cool-down, down to the minimum (0)
    falls = run(spec(min_vms=0), lambda t: 0.95 if t < 300 else 0.1, 1800)
    assert falls == [(60, 2), (125, 2), (190, 2), (600, -2), (905, -2), (1210, -2)]


def test_cost_cap_and_instance_hours():
    assert cost_cap(spec(budget={"max_cost_per_hour": 0.0624, "prices": {"t3.small": 0.0208}})) == 3
    assert cost_cap(spec()) is None
    assert instance_hours([(0, 3600), (1800, None), (-3600, 1800)], day_start=0, now=7200) == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"signal": {"kind": "http", "url": "http://user:secret@example.org/x"}}, "signal.url"),
        ({"signal": {"kind": "http", "url": "file:///etc/passwd"}}, "signal.url"),
        ({"template": {"image": "ami-1", "size": "t3.small", "extra": 1}}, "template.extra"),
        ({"step": 0}, "step"),
        ({"max_vms": 1001}, "max_vms"),
    ],
    ids=["url-with-password", "not-http", "unknown-field", "step", "max"],
)
def test_malformed_policies_are_refused_naming_the_field(changes, field):
    with pytest.raises(ValidationError) as refused:
        spec(**changes)
    assert field in {".".join(str(p) for p in e["loc"]) for e in refused.value.errors()}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"scale_in_below": 0.9}, "scale_in_below"),
        ({"min_vms": 7}, "min_vms"),
        ({"signal": {"kind": "prometheus", "url": "http://127.0.0.1:9090"}}, "signal.query"),
        ({"signal": {"kind": "pool"}}, "signal.pool"),
        ({"site": "private"}, "site"),
        ({"budget": {"max_cost_per_hour": 1}}, "budget.prices"),
    ],
    ids=["no-hysteresis", "min-above-max", "promql-missing", "pool-missing", "cannot-launch", "price-missing"],
)
def test_inconsistent_policies_are_refused_naming_the_field(changes, field):
    from ipaddress import IPv4Network

    from cloudgw.model.addr import AddressRange
    from cloudgw.model.rules import check_burst
    from cloudgw.model.topology import Network, Pool, Site, Topology

    topo = Topology(
        sites={"private": Site("private", "generic"), "public": Site("public", "lab")},
        networks={"lab": Network("lab", IPv4Network("192.168.1.0/24"))},
        pools={"public-lab": Pool("public-lab", "lab", "public", AddressRange.parse("192.168.1.11-192.168.1.20"))},
    )
    assert check_burst(topo, spec()) == []
    assert field == check_burst(topo, spec(**changes))[0].field


def test_free_addresses_skip_what_is_taken():
    from cloudgw.model.burstplan import day_start, free_addresses

    assert free_addresses(11, 20, {11, 12, 14}, 3) == [13, 15, 16]
    assert free_addresses(11, 13, {11, 12, 13}, 2) == []
    assert free_addresses(11, 13, set(), 10) == [11, 12, 13]
    assert day_start(86_400 * 3 + 5) == 86_400 * 3


def test_the_maximum_and_the_budget_hold_under_a_demand_that_keeps_rising():
    policy = spec(max_vms=6, step=2, warmup=60, budget={"instance_hours_per_day": 1.0})
    memory, launched, reasons = Memory(), [], []
    for now in range(0, 7200, 5):
        hours = sum(now - t for t in launched) / 3600
        decision = decide(policy, 0.9 + now / 10_000, None, running(len(launched)), memory, now, hours)
        memory = decision.memory
        launched += [now] * max(0, decision.change)
        reasons.append(decision.reason)
        assert len(launched) <= 6
    assert len(launched) == 6  # three scale-outs reached the maximum within the first hour's budget...
    assert any(r.startswith("budget reached") for r in reasons)  # ...then the budget holds, reason given
    assert reasons[-1].startswith("budget reached") and reasons[-1].endswith("holding at 6")


def test_the_budget_stops_new_vms_before_the_maximum():
    policy = spec(max_vms=50, step=2, warmup=60, budget={"instance_hours_per_day": 0.1})
    memory, launched = Memory(), []
    for now in range(0, 3600, 5):
        hours = sum(now - t for t in launched) / 3600
        decision = decide(policy, 0.95, None, running(len(launched)), memory, now, hours)
        memory = decision.memory
        launched += [now] * max(0, decision.change)
    assert 0 < len(launched) < 50 and decision.reason.startswith("budget reached")
