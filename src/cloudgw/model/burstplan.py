"""The burst decision (pure): one reading of the demand in, how many VMs to add or remove out, with
the reason in words. The controller's loop calls it every few seconds; tests call it with a test
clock.

Rules, in order:
1. A signal that cannot be read changes nothing ("signal unreadable (...): holding at 3"), and its
   timers start over: a missing reading is never evidence.
2. Bounds first: below `min_vms` adds VMs, above `max_vms` (or above what `max_cost_per_hour`
   pays for) removes them.
3. Demand above `scale_out_above` continuously for `warmup` seconds adds `step` VMs (fewer at the
   maximum or at the budget); demand below `scale_in_below` for `cooldown` seconds removes `step`.
   Each window starts again after an action, so two actions are at least min(warmup, cooldown)
   apart, and a signal that wanders between the two thresholds never acts: that gap is the
   hysteresis.
4. The instance-hours budget of the UTC day, once spent, stops new VMs; the running ones are kept
   ("budget reached: holding at 6"): removing them is the demand's decision, not the budget's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from cloudgw.model.burst import BurstSpec

VmState = Literal["pending", "running", "draining"]
Action = Literal["out", "in", "hold", "error"]


@dataclass(frozen=True)
class Memory:
    """What the loop keeps between readings (stored per policy)."""

    above_since: float | None = None  # demand has been above scale_out_above since then
    below_since: float | None = None  # demand has been below scale_in_below since then
    last_action: float | None = None  # when VMs were last added or removed


@dataclass(frozen=True)
class Vm:
    name: str
    state: VmState
    launched_at: float


@dataclass(frozen=True)
class Decision:
    action: Action
    change: int  # VMs to add (> 0) or remove (< 0)
    reason: str
    memory: Memory


def _vms(n: int) -> str:
    return f"{n} VM" if abs(n) == 1 else f"{n} VMs"


def cost_cap(spec: BurstSpec) -> int | None:
    """The most VMs max_cost_per_hour pays for (None: no cost cap)."""
    limit, price = spec.budget.max_cost_per_hour, spec.budget.prices.get(spec.template.size)
    if limit is None or price is None:
        return None
    return spec.max_vms if price == 0 else math.floor(limit / price + 1e-9)


def decide(
    spec: BurstSpec,
    demand: float | None,
    error: str | None,
    vms: Sequence[Vm],
    memory: Memory,
    now: float,
    hours_today: float = 0.0,
) -> Decision:
    active = sum(1 for vm in vms if vm.state != "draining")
    holding = f"holding at {active}"
    if error is not None or demand is None or not math.isfinite(demand):
        why = error or f"not a number ({demand})"
        return Decision(
            "error", 0, f"signal unreadable ({why}): {holding}", replace(memory, above_since=None, below_since=None)
        )
    ceiling = spec.max_vms
    cap = cost_cap(spec)
    if cap is not None and cap < ceiling:
        ceiling = cap
    budget_left = spec.budget.instance_hours_per_day is None or hours_today < spec.budget.instance_hours_per_day
    acted = replace(memory, last_action=now, above_since=None, below_since=None)
    if active < spec.min_vms and budget_left and active < ceiling:
        add = min(spec.min_vms, ceiling) - active
        return Decision("out", add, f"below the minimum of {spec.min_vms}: +{_vms(add)}", acted)
    if active > ceiling:
        remove = active - ceiling
        what = (
            f"the maximum of {spec.max_vms}" if ceiling == spec.max_vms else f"the {ceiling} VMs the cost cap pays for"
        )
        return Decision("in", -remove, f"above {what}: -{_vms(remove)}", acted)
    d = f"{demand:.2f}"
    if demand > spec.scale_out_above:
        since = memory.above_since if memory.above_since is not None else now
        kept = replace(memory, above_since=since, below_since=None)
        held = now - since
        if held < spec.warmup:
            return Decision(
                "hold",
                0,
                f"demand {d} > {spec.scale_out_above:g} for {held:.0f} s of {spec.warmup:.0f}: {holding}",
                kept,
            )
        if not budget_left:
            return Decision(
                "hold",
                0,
                f"budget reached ({hours_today:.1f} of {spec.budget.instance_hours_per_day:g} "
                f"instance-hours today): {holding}",
                kept,
            )
        add = min(spec.step, ceiling - active)
        if add <= 0:
            limit = "the maximum" if ceiling == spec.max_vms else "the cost cap"
            return Decision(
                "hold", 0, f"demand {d} > {spec.scale_out_above:g}, at {limit} ({ceiling}): {holding}", kept
            )
        return Decision("out", add, f"demand {d} > {spec.scale_out_above:g} for {held:.0f} s: +{_vms(add)}", acted)
    if demand < spec.scale_in_below:
        since = memory.below_since if memory.below_since is not None else now
        kept = replace(memory, below_since=since, above_since=None)
        held = now - since
        if held < spec.cooldown:
            return Decision(
                "hold",
                0,
                f"demand {d} < {spec.scale_in_below:g} for {held:.0f} s of {spec.cooldown:.0f}: {holding}",
                kept,
            )
        remove = min(spec.step, active - spec.min_vms)
        if remove <= 0:
            return Decision(
                "hold", 0, f"demand {d} < {spec.scale_in_below:g}, at the minimum ({spec.min_vms}): {holding}", kept
            )
        return Decision("in", -remove, f"demand {d} < {spec.scale_in_below:g} for {held:.0f} s: -{_vms(remove)}", acted)
    between = f"demand {d} between {spec.scale_in_below:g} and {spec.scale_out_above:g}: {holding}"
    return Decision("hold", 0, between, replace(memory, above_since=None, below_since=None))


def to_remove(vms: Sequence[Vm], count: int) -> list[Vm]:
    """The VMs a scale-in drains: the newest first (pending before running at the same age)."""
    candidates = [vm for vm in vms if vm.state != "draining"]
    candidates.sort(key=lambda vm: (vm.launched_at, vm.state == "pending", vm.name), reverse=True)
    return candidates[:count]


def instance_hours(spans: Sequence[tuple[float, float | None]], day_start: float, now: float) -> float:
    """Instance-hours inside [day_start, now] of VMs that ran from start to end (None: still running)."""
    total = 0.0
    for start, end in spans:
        begin, finish = max(start, day_start), min(end if end is not None else now, now)
        total += max(0.0, finish - begin)
    return total / 3600


def free_addresses(first: int, last: int, taken: set[int], count: int) -> list[int]:
    """The lowest `count` addresses of [first, last] that nothing holds (announced anywhere in the
    network, another burst VM, a gateway's LAN address, reserved by the cloud)."""
    found: list[int] = []
    address = first
    while address <= last and len(found) < count:
        if address not in taken:
            found.append(address)
        address += 1
    return found


def day_start(now: float) -> float:
    """The start of the UTC day `now` is in (the instance-hours budget is per UTC day)."""
    return now - now % 86_400
