"""The provider reconciler: drives each site's cloud from the effective mapping, the way an agent
drives its kernel (observe, plan, apply; idempotent; only what it owns), on every new revision and
once a minute. One leader among controller replicas does it (a PostgreSQL advisory lock; SQLite has
one process). Its ledger and last word per site are rows of provider_status, so every replica shows
them; the VMs each cloud lists are written to the topology (cloud inventory) for the site's gateway
to announce.

A failed step stops that site's pass and is reported with what was done before it ("step 3 of 5
failed: ..."); the ledger is saved after every step, so nothing half-applied goes unrecorded.
Transient errors (throttling, 5xx, timeouts) retry with exponential backoff up to five minutes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import IPv4Address
from typing import Any

from sqlalchemy import Connection, delete, select, text

from cloudgw.controller.db.models import CloudEndpointRow, ProviderStatusRow
from cloudgw.controller.state import State
from cloudgw.logs import log_event
from cloudgw.model.cloud import cloud_gateway, items_from_json, items_to_json
from cloudgw.model.topology import Site, Topology
from cloudgw.providers.base import Finding, Need, ProviderError
from cloudgw.providers.need import need_for
from cloudgw.providers.registry import driven, preflight_site, provider_for

log = logging.getLogger("cloudgw.controller.providers")
LOCK_KEY = 0x63677764  # "cgwd": the provider leader's advisory lock
BLOCKING = {"cloud", "subnet", "vpc", "gateway"}  # the cloud block itself is wrong: change nothing


class Leadership:
    """Whether this process drives the clouds. SQLite: always (one process owns the file).
    PostgreSQL: a session-level advisory lock held on one dedicated connection; if that connection
    dies the lock goes with it and another replica takes over."""

    def __init__(self, state: State) -> None:
        self.engine = state.engine
        self.connection: Connection | None = None
        # the provider loop and the burst loop ask from worker threads of their own, and one
        # connection is not for two threads at once: unguarded, they broke it under load at 10,000
        # gateways ("transaction already deassociated", then "the connection is closed", and the
        # lock with it)
        self._lock = threading.Lock()

    def held(self) -> bool:
        if self.engine.dialect.name != "postgresql":
            return True
        with self._lock:
            return self._held()

    def _held(self) -> bool:
        try:
            if self.connection is None:
                self.connection = self.engine.connect()
                got = bool(self.connection.execute(text("select pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar())
                self.connection.commit()
                if not got:
                    self.connection.close()
                    self.connection = None
                return got
            self.connection.execute(text("select 1"))
            self.connection.commit()
            return True
        except Exception as exc:  # the connection died: the lock is gone with it
            log_event(log, "providers.leader_lost", logging.WARNING, error=exc)
            self._release()
            return False

    def release(self) -> None:
        with self._lock:
            self._release()

    def _release(self) -> None:
        if self.connection is not None:
            # invalidate, not close: a pooled connection would keep its session, and the lock with it
            with contextlib.suppress(Exception):  # a dead connection
                self.connection.invalidate()
            with contextlib.suppress(Exception):
                self.connection.close()
            self.connection = None


class CloudSync:
    def __init__(
        self,
        state: State,
        clients: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.clients = clients  # injected SDK clients by site (tests)
        self.clock = clock
        self.leadership = Leadership(state)
        self.failures = 0  # consecutive passes with a transient error: the backoff
        self.passes = 0

    def backoff(self) -> float:
        return 0.0 if self.failures == 0 else min(300.0, 2.0 ** min(self.failures, 9))

    # one pass -----------------------------------------------------------------------------------
    def run_once(self) -> dict[str, str]:
        """Every site with a cloud block, then every ledger left by a site that is gone. Returns the
        state per site: ok, converging, error, refused, removed."""
        if not self.leadership.held():
            return {}
        self.passes += 1
        topo = self.state.snapshot().topo
        ledgers = self._ledgers()
        results: dict[str, str] = {}
        transient = False
        for name in sorted(topo.sites):
            site = topo.sites[name]
            if not driven(site):
                continue
            ledger = ledgers.get(name)
            if ledger is not None and ledger.cloud != items_to_json(site.cloud):
                # the cloud block changed (another ENI, another cloud): clean the old one first
                state, transient_here = self._remove(ledger)
                transient |= transient_here
                if state != "removed":
                    results[name] = state
                    continue
                ledger = None
            state, transient_here = self._reconcile(topo, site, ledger.owned if ledger else {})
            results[name] = state
            transient |= transient_here
        for name, ledger in ledgers.items():
            if name not in topo.sites or not driven(topo.sites[name]):
                state, transient_here = self._remove(ledger)
                results[name] = state
                transient |= transient_here
        self.failures = self.failures + 1 if transient else 0
        return results

    def _ledgers(self) -> dict[str, ProviderStatusRow]:
        with self.state.session() as session:
            return {row.site: row for row in session.scalars(select(ProviderStatusRow))}

    def _reconcile(self, topo: Topology, site: Site, owned: dict[str, Any]) -> tuple[str, bool]:
        provider = provider_for(site, self.clients)
        need = need_for(topo, site.name)
        findings = preflight_site(topo, site.name, provider, owned)
        blocking = [f for f in findings if f.severity == "error" and f.check in BLOCKING]
        detail: dict[str, Any] = {"findings": [f.as_dict() for f in findings if f.severity in ("error", "warning")]}
        if blocking:
            self._save(site, "refused", _say(blocking[0]), detail, owned)
            return "refused", False
        applied: list[str] = []
        try:
            seen = provider.observe(need, owned)
            steps = provider.plan(need, seen)
            for index, step in enumerate(steps, 1):
                try:
                    provider.apply(step, seen)
                except ProviderError as exc:
                    exc.args = (f"step {index} of {len(steps)} failed ({step.text}): {exc}",)
                    raise
                applied.append(step.text)
                self._save(site, "converging", "", {**detail, "applied": applied}, seen.owned)
                log_event(log, "providers.step", site=site.name, step=step.kind, text=step.text)
            if steps:
                seen = provider.observe(need, seen.owned)  # confirm: AWS answers before the move is done
            remaining = provider.plan(need, seen)
        except ProviderError as exc:
            self._save(site, "error", str(exc), {**detail, "applied": applied}, owned, keep_owned=True)
            log_event(log, "providers.failed", logging.WARNING, site=site.name, error=str(exc), transient=exc.transient)
            return "error", exc.transient
        self._write_inventory(topo, site.name, seen.inventory)
        errors = [f for f in findings if f.severity == "error"]
        state = "converging" if remaining else ("error" if errors else "ok")
        facts = _counts(seen.facts, seen.inventory)
        detail = {**detail, "applied": applied, "pending": [s.text for s in remaining], **facts}
        self._save(site, state, _say(errors[0]) if errors else "", detail, seen.owned)
        return state, False

    def _remove(self, ledger: ProviderStatusRow) -> tuple[str, bool]:
        """The site (or its cloud block) is gone: undo what the ledger says cloudgw did there."""
        site = Site(ledger.site, ledger.provider, cloud=items_from_json(ledger.cloud))
        provider = provider_for(site, self.clients)
        need = Need.removal(site.name, site.provider)
        owned = dict(ledger.owned or {})
        if not any(owned.values()):  # cloudgw never changed anything there: nothing to undo
            self._forget(ledger.site)
            return "removed", False
        try:
            seen = provider.observe(need, owned)
            for step in provider.plan(need, seen):
                provider.apply(step, seen)
                self._update_owned(ledger.site, seen.owned)
                log_event(log, "providers.step", site=site.name, step=step.kind, text=step.text)
        except ProviderError as exc:
            with self.state.session() as session, session.begin():
                row = session.get(ProviderStatusRow, ledger.site)
                if row is not None:
                    row.state, row.error, row.checked_at = "removing", f"cleaning up: {exc}", datetime.now(UTC)
            return "error", exc.transient
        self._forget(ledger.site)
        return "removed", False

    def _forget(self, site: str) -> None:
        with self.state.session() as session, session.begin():
            session.execute(delete(ProviderStatusRow).where(ProviderStatusRow.site == site))
        log_event(log, "providers.removed", site=site)

    # records ------------------------------------------------------------------------------------
    def _save(
        self,
        site: Site,
        state: str,
        error: str,
        detail: dict[str, Any],
        owned: dict[str, Any],
        keep_owned: bool = False,
    ) -> None:
        with self.state.session() as session, session.begin():
            row = session.get(ProviderStatusRow, site.name)
            if row is None:
                row = ProviderStatusRow(site=site.name, owned={})
                session.add(row)
            row.provider, row.cloud, row.state, row.error = site.provider, items_to_json(site.cloud), state, error
            row.detail = _plain(detail)
            if not keep_owned:
                row.owned = _plain(owned)
            row.checked_at = datetime.now(UTC)

    def _update_owned(self, site: str, owned: dict[str, Any]) -> None:
        with self.state.session() as session, session.begin():
            row = session.get(ProviderStatusRow, site)
            if row is not None:
                row.owned = _plain(owned)

    def _write_inventory(self, topo: Topology, site: str, listed: dict[IPv4Address, str | None]) -> None:
        """The VMs the cloud lists, per network of the site, into the topology when they changed."""
        wanted: dict[str, dict[IPv4Address, str | None]] = {}
        for network in sorted({p.network for p in topo.pools.values() if p.site == site}):
            cidr = topo.networks[network].cidr
            owner = {ip: mac for ip, mac in listed.items() if ip in cidr and _own(topo, site, network, ip)}
            wanted[network] = owner
        current = {inv.network: dict(inv.endpoints) for inv in topo.inventory.values() if inv.site == site}
        changed = {n for n in set(wanted) | set(current) if wanted.get(n, {}) != current.get(n, {})}
        if not changed:
            return
        with self.state.write(f"provider:{site}") as change:
            site_id = change.id_of("site", site)
            for network in sorted(changed):
                network_id = change.id_of("network", network)
                change.session.execute(
                    delete(CloudEndpointRow).where(
                        CloudEndpointRow.site_id == site_id, CloudEndpointRow.network_id == network_id
                    )
                )
                rows = wanted.get(network, {})
                if rows:
                    change.session.execute(
                        CloudEndpointRow.__table__.insert(),
                        [
                            {"site_id": site_id, "network_id": network_id, "ip": str(ip), "mac": mac}
                            for ip, mac in sorted(rows.items())
                        ],
                    )
                before, after = current.get(network, {}), rows
                change.record(
                    "update",
                    "inventory",
                    f"{site}/{network}",
                    None,
                    {
                        "added": [str(i) for i in sorted(set(after) - set(before))][:50],
                        "removed": [str(i) for i in sorted(set(before) - set(after))][:50],
                        "total": len(after),
                        "gateway": cloud_gateway(topo, site),
                    },
                )

    # reads --------------------------------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        return status_rows(self.state)


def _own(topo: Topology, site: str, network: str, ip: IPv4Address) -> bool:
    """Only addresses of this site's own pools are its endpoints (the gateway's secondary IPs and a
    stray VM elsewhere are not)."""
    pool = topo.owner_pool(network, ip)
    return pool is not None and pool.site == site


def _say(finding: Finding) -> str:
    return f"{finding.message} (fix: {finding.fix})" if finding.fix else finding.message


def _counts(facts: dict[str, Any], inventory: dict[IPv4Address, Any]) -> dict[str, Any]:
    counts: dict[str, Any] = {"inventory": len(inventory)}
    if "secondary" in facts:
        counts["secondary_ips"] = len(facts["secondary"])
        counts["source_dest_check"] = facts["source_dest_check"]
        counts["instance_type"] = facts.get("instance_type")
    if "pairs" in facts:
        counts["allowed_address_pairs"] = len(facts["pairs"])
        counts["port_security"] = facts["port_security"]
    return counts


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def status_rows(state: State) -> list[dict[str, Any]]:
    """The reconciler's last word per site, as every replica can read it."""
    with state.session() as session:
        rows = list(session.scalars(select(ProviderStatusRow).order_by(ProviderStatusRow.site)))
        return [
            {
                "site": r.site,
                "provider": r.provider,
                "state": r.state,
                "error": r.error,
                "detail": r.detail or {},
                "checked_at": r.checked_at.replace(tzinfo=UTC) if r.checked_at.tzinfo is None else r.checked_at,
            }
            for r in rows
        ]
