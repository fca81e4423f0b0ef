"""The burst loop: each pass reads every policy's demand, decides (model.burstplan), and acts. Only
the provider leader runs it (the same PostgreSQL advisory lock as the cloud reconciler; SQLite: the
one controller).

Design notes
- Mapping first: a scale-out writes the VMs' rows (state `pending`, the chosen pool addresses) in
  one State.write before any cloud call. The rows join the site's cloud inventory, so the site's
  gateway announces the addresses and the private side reaches a VM the moment it boots.
- Then the launch, one VM at a time, through the site's provider (tags: the policy and the
  address; AWS also gets a ClientToken). A row without an instance ID is a launch that did not
  finish: the next pass, in this controller or a restarted one, first looks for a VM of that policy
  at that address in the cloud and adopts it, and launches only if there is none. So a restart
  neither loses nor doubles a VM.
- Scale-in drains: the optional hook gets a POST {policy, vm, ip}, the VM is `draining` (not
  counted) for `drain_grace` seconds, then terminated, and its row removed (its address goes back
  to the pool, and out of the mapping).
- Every action, and every change of what the policy is holding on, is a decision row with its
  reason; the state row keeps the timers (model.burstplan.Memory), the last demand and the last
  word, which `burst status` shows.
- VMs of a deleted policy are terminated (the loop never leaks a machine it rented).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any

import httpx
from sqlalchemy import delete, select

from cloudgw.controller.db.models import BurstDecisionRow, BurstStateRow, BurstVmRow
from cloudgw.controller.signals import SignalError, read_signal
from cloudgw.controller.state import Snapshot, State
from cloudgw.logs import log_event
from cloudgw.model.burst import BurstSpec
from cloudgw.model.burstplan import Decision, Memory, Vm, day_start, decide, free_addresses, to_remove
from cloudgw.model.rules import reserved_addresses
from cloudgw.model.topology import Site, Topology
from cloudgw.providers.base import Provider, ProviderError, VmSpec

log = logging.getLogger("cloudgw.controller.burst")
SERIES_SECONDS = 3600.0
KEEP_DECISIONS_S = 30 * 86_400.0  # decisions older than this are deleted (checked every 720 passes)


class BurstLoop:
    def __init__(
        self,
        state: State,
        leader: Callable[[], bool],
        providers: Callable[[Site], Provider],
        clock: Callable[[], float] = time.time,
        http: httpx.Client | None = None,
    ) -> None:
        self.state = state
        self.leader = leader
        self.providers = providers
        self.clock = clock
        self.http = http or httpx.Client(follow_redirects=False)
        self.passes = 0
        # per policy: (time, demand, VMs) of each pass over the last hour, for the dashboard's chart
        # (in memory, like the throughput history: a restarted controller starts a new chart)
        self.series: dict[str, deque[tuple[float, float | None, int]]] = {}

    # one pass -----------------------------------------------------------------------------------
    def run_once(self) -> dict[str, str]:
        """Every policy once; returns each policy's last word."""
        if not self.leader():
            return {}
        snap = self.state.snapshot()
        topo = snap.topo
        with self.state.session() as session:
            rows = list(session.scalars(select(BurstVmRow)))
        by_policy: dict[str, list[BurstVmRow]] = {}
        for row in rows:
            by_policy.setdefault(row.policy, []).append(row)
        said: dict[str, str] = {}
        for name in sorted(topo.bursts):
            try:
                said[name] = self._policy(topo.bursts[name], by_policy.get(name, []), snap)
            except ProviderError as exc:
                said[name] = f"cloud error: {exc}"
                self._save_state(name, None, said[name], None)
                log_event(log, "burst.cloud_error", logging.WARNING, policy=name, error=exc)
        for name, orphans in by_policy.items():
            if name not in topo.bursts:
                self._remove_orphans(name, orphans, snap)
        for name in [n for n in self.series if n not in topo.bursts]:
            del self.series[name]
        if self.passes % 720 == 0:
            with self.state.session() as session, session.begin():
                session.execute(delete(BurstDecisionRow).where(BurstDecisionRow.at < self.clock() - KEEP_DECISIONS_S))
        self.passes += 1
        return said

    def _policy(self, policy: BurstSpec, rows: list[BurstVmRow], snap: Snapshot) -> str:
        topo, now = snap.topo, self.clock()
        provider = self.providers(topo.sites[policy.site])
        self._finish_launches(policy, rows, provider)
        for row in [r for r in rows if r.state == "draining" and (r.drain_until or 0) <= now]:
            self._terminate(policy.name, row, provider, topo)
            rows.remove(row)
        state = self._load_state(policy.name)
        memory = Memory(**{k: v for k, v in state.get("memory", {}).items() if k in Memory.__dataclass_fields__})
        if not policy.enabled:
            self._save_state(policy.name, None, "policy disabled: changes nothing", None, memory)
            return "policy disabled: changes nothing"
        demand: float | None = None
        error: str | None = None
        try:
            demand = read_signal(policy.signal, topo, snap.index, self.http)
        except SignalError as exc:
            error = str(exc)
        vms = [Vm(str(r.ip), r.state, r.launched_at) for r in rows]  # type: ignore[arg-type]
        hours = float(state.get("memory", {}).get("hours_done", 0.0)) if state.get("day") == day_start(now) else 0.0
        hours += sum(max(0.0, now - max(r.launched_at, day_start(now))) for r in rows) / 3600
        decision = decide(policy, demand, error, vms, memory, now, hours)
        # the decision is kept before it is carried out: a pass that fails half-way (the cloud, a
        # crash) leaves rows the next pass finishes, and never makes the same decision twice
        counted = len([v for v in vms if v.state != "draining"])
        self._record(policy.name, decision, demand, counted, state, now)
        self._save_state(policy.name, demand, decision.reason, error, decision.memory)
        points = self.series.setdefault(policy.name, deque())
        points.append((now, demand, counted + max(0, decision.change)))
        while points and points[0][0] < now - SERIES_SECONDS:
            points.popleft()
        if decision.change > 0:
            self._scale_out(policy, decision.change, topo, provider, now)
        elif decision.change < 0:
            chosen = {vm.name for vm in to_remove(vms, -decision.change)}
            self._drain(policy, [r for r in rows if str(r.ip) in chosen], now)
        return decision.reason

    # acting -------------------------------------------------------------------------------------
    def _scale_out(self, policy: BurstSpec, count: int, topo: Topology, provider: Provider, now: float) -> None:
        pool = next(
            p
            for p in topo.pools.values()
            if p.network == policy.network and p.site == policy.site and (policy.pool in (None, p.name))
        )
        network = topo.networks[policy.network]
        with self.state.session() as session:
            held = {int(IPv4Address(ip)) for ip in session.scalars(select(BurstVmRow.ip))}
        taken = held | {int(ip) for (n, ip, _g) in topo.announcements if n == policy.network}
        taken |= {int(a) for g in topo.gateways.values() for a in g.lan_addresses}
        taken |= {int(a) for a in reserved_addresses(topo.sites[policy.site].provider, network.cidr)}
        addresses = [IPv4Address(a) for a in free_addresses(int(pool.range.first), int(pool.range.last), taken, count)]
        if not addresses:
            raise ProviderError(f"pool {pool.name} has no free address for a new VM")
        with self.state.write(f"burst:{policy.name}") as change:  # the mapping first
            site_id, network_id = change.id_of("site", policy.site), change.id_of("network", policy.network)
            written = [
                BurstVmRow(
                    policy=policy.name,
                    site_id=site_id,
                    network_id=network_id,
                    ip=str(address),
                    state="pending",
                    launched_at=now,
                )
                for address in addresses
            ]
            change.session.add_all(written)
            change.record(
                "update",
                "inventory",
                f"{policy.site}/{policy.network}",
                None,
                {"burst": policy.name, "added": [str(a) for a in addresses]},
            )
        self._finish_launches(policy, written, provider)  # ids set at the commit (sessions expire nothing)

    def _finish_launches(self, policy: BurstSpec, rows: list[BurstVmRow], provider: Provider) -> None:
        """Launch what has no instance yet, adopting a VM the cloud already has at that address."""
        waiting = [r for r in rows if r.instance is None]
        if not waiting:
            return
        known = provider.list_vms(policy.name)
        for row in waiting:
            address = IPv4Address(row.ip)
            instance = known.get(address)
            if instance is None:
                spec = VmSpec(
                    policy.name,
                    address,
                    policy.template.image,
                    policy.template.size,
                    policy.template.user_data,
                    policy.template.key_name,
                )
                instance = provider.launch_vm(spec)
                log_event(log, "burst.launched", policy=policy.name, ip=address, instance=instance)
            else:
                log_event(log, "burst.adopted", policy=policy.name, ip=address, instance=instance)
            with self.state.session() as session, session.begin():
                stored = session.get(BurstVmRow, row.id)
                if stored is not None:
                    stored.instance, stored.state = instance, "running"
            row.instance, row.state = instance, "running"

    def _drain(self, policy: BurstSpec, rows: list[BurstVmRow], now: float) -> None:
        for row in rows:
            if policy.drain_hook:
                try:
                    self.http.post(
                        policy.drain_hook, json={"policy": policy.name, "vm": row.instance, "ip": row.ip}, timeout=5
                    )
                except httpx.HTTPError as exc:  # the hook is a courtesy: the grace time still applies
                    log_event(log, "burst.drain_hook_failed", logging.WARNING, policy=policy.name, error=exc)
            with self.state.session() as session, session.begin():
                stored = session.get(BurstVmRow, row.id)
                if stored is not None:
                    stored.state, stored.drain_until = "draining", now + policy.drain_grace
            row.state, row.drain_until = "draining", now + policy.drain_grace

    def _terminate(self, policy: str, row: BurstVmRow, provider: Provider, topo: Topology) -> None:
        if row.instance is not None:
            provider.terminate_vm(row.instance)
        now = self.clock()
        state = self._load_state(policy)
        done = float(state.get("memory", {}).get("hours_done", 0.0)) if state.get("day") == day_start(now) else 0.0
        done += max(0.0, now - max(row.launched_at, day_start(now))) / 3600
        with self.state.write(f"burst:{policy}") as change:  # out of the mapping with the machine
            change.session.execute(delete(BurstVmRow).where(BurstVmRow.id == row.id))
            site = next((n for n, i in change.ids["site"].items() if i == row.site_id), "?")
            network = next((n for n, i in change.ids["network"].items() if i == row.network_id), "?")
            change.record("update", "inventory", f"{site}/{network}", None, {"burst": policy, "removed": [row.ip]})
        self._save_state(policy, None, None, None, None, hours_done=done)
        log_event(log, "burst.terminated", policy=policy, ip=row.ip, instance=row.instance)

    def _remove_orphans(self, policy: str, rows: list[BurstVmRow], snap: Snapshot) -> None:
        site = next((n for n, i in snap.ids.get("site", {}).items() if i == rows[0].site_id), None)
        if site is None:
            return
        provider = self.providers(snap.topo.sites[site])
        for row in rows:
            try:
                self._terminate(policy, row, provider, snap.topo)
            except ProviderError as exc:
                log_event(log, "burst.orphan_left", logging.WARNING, policy=policy, ip=row.ip, error=exc)

    # records ------------------------------------------------------------------------------------
    def _load_state(self, policy: str) -> dict[str, Any]:
        with self.state.session() as session:
            row = session.get(BurstStateRow, policy)
            return dict(row.memory or {}) | {"reason": row.reason} if row is not None else {}

    def _save_state(
        self,
        policy: str,
        demand: float | None,
        reason: str | None,
        error: str | None,
        memory: Memory | None = None,
        hours_done: float | None = None,
    ) -> None:
        now = self.clock()
        with self.state.session() as session, session.begin():
            row = session.get(BurstStateRow, policy)
            if row is None:
                row = BurstStateRow(policy=policy, memory={}, reason="", checked_at=now)
                session.add(row)
            stored = dict(row.memory or {})
            if memory is not None:
                stored["memory"] = {**stored.get("memory", {}), **dataclasses.asdict(memory)}
            if hours_done is not None:
                stored["memory"] = {**stored.get("memory", {}), "hours_done": hours_done}
                stored["day"] = day_start(now)
            row.memory = stored
            if reason is not None:
                row.reason, row.demand, row.error, row.checked_at = reason[:300], demand, (error or None), now

    def _record(
        self, policy: str, decision: Decision, demand: float | None, vms: int, state: dict[str, Any], now: float
    ) -> None:
        """Actions always; a hold or an error only when what it holds on changed (the numbers in
        "for 20 s of 60" do not count)."""
        key = re.sub(r"[-\d.]+", "#", decision.reason)
        if decision.action in ("hold", "error") and key == re.sub(r"[-\d.]+", "#", state.get("reason", "")):
            return
        with self.state.session() as session, session.begin():
            session.add(
                BurstDecisionRow(
                    policy=policy,
                    at=now,
                    demand=demand,
                    vms=vms,
                    action=decision.action,
                    change=decision.change,
                    reason=decision.reason[:300],
                )
            )
        log_event(
            log, "burst.decided", policy=policy, action=decision.action, change=decision.change, reason=decision.reason
        )
