"""The active role of a site's HA pair, as a lease the controller grants (docs/ha.md).

A gateway that wants the active role asks here; the controller grants it when no other gateway of
the site holds an unexpired lease, and the active gateway renews it every half `dead_ms`. A renewal
is one UPDATE (no revision, no documents); a change of role is a write through State.write: its
audit row says why, and every document that names the pair's roles is re-rendered (the peers move
the site's addresses to the new active gateway). Concurrent claims, also from two replicas, are
serialised by locking the site's row first.

When the controller cannot be reached the agents decide alone (agent/ha.py); this only arbitrates
while it is up, which is what keeps a pair whose LAN link broke from having two active gateways.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudgw.api.schemas import RoleAnswer, RoleRequest
from cloudgw.controller.db.models import GatewayRow, SiteRow
from cloudgw.controller.state import State
from cloudgw.errors import CloudgwError
from cloudgw.logs import log_event
from cloudgw.model.topology import HaTiming

log = logging.getLogger("cloudgw.controller")


def lease_seconds(timing: HaTiming) -> float:
    """How long a grant lasts: the partner's dead time and half a second, so a dead active's lease
    has run out about when its standby notices."""
    return timing.dead_ms / 1000 + 0.5


class _Held(CloudgwError):
    """Another gateway got the lease first (raised inside the write: its transaction is rolled back)."""

    def __init__(self, holder: GatewayRow) -> None:
        super().__init__(f"held by {holder.name}")
        self.answer = _refused(holder, 0.0)


def _lock_site(session: Session, site_id: int) -> None:
    """Claims for one site never interleave, across replicas too: PostgreSQL locks the site's row
    until the transaction ends; SQLite has one writer at a time, and a claim that changes a role
    checks again inside State.write, which holds that lock."""
    session.execute(select(SiteRow.id).where(SiteRow.id == site_id).with_for_update())


def request_role(state: State, gateway: str, body: RoleRequest) -> RoleAnswer:
    snap = state.snapshot()
    me = snap.topo.gateways[gateway]
    members = snap.topo.gateways_of(me.site)
    timing = snap.topo.sites[me.site].ha
    ttl = lease_seconds(timing)
    if len(members) < 2:
        return RoleAnswer(
            granted=body.role == "active",
            role="active",
            active=gateway,
            epoch=0,
            lease_s=0.0,
            reason="the site's only gateway is always active",
        )
    site_id = snap.ids["site"][me.site]
    now = state.clock()
    # the common case, a renewal by the active gateway: one UPDATE, no revision
    if body.role == "active":
        with state.session() as session, session.begin():
            _lock_site(session, site_id)
            rows = list(session.scalars(select(GatewayRow).where(GatewayRow.site_id == site_id)))
            mine = next(r for r in rows if r.name == gateway)
            holder = _holder(rows, gateway, now)
            if holder is not None:
                return _refused(holder, ttl)
            if mine.role == "active":
                mine.lease_until = now + ttl
                return RoleAnswer(granted=True, role="active", active=gateway, epoch=mine.role_epoch, lease_s=ttl)
    elif me.role != "active":
        active = next((g for g in members if g.role == "active"), None)
        return RoleAnswer(
            granted=True,
            role="standby",
            active=active.name if active else None,
            epoch=max(g.role_epoch for g in members),
            lease_s=0.0,
        )
    try:
        return _change(state, gateway, site_id, body, ttl)
    except _Held as held:
        return held.answer.model_copy(update={"lease_s": ttl})


def _holder(rows: list[GatewayRow], gateway: str, now: float) -> GatewayRow | None:
    return next(
        (r for r in rows if r.name != gateway and r.role == "active" and r.lease_until and r.lease_until > now), None
    )


def _refused(holder: GatewayRow, ttl: float) -> RoleAnswer:
    return RoleAnswer(
        granted=False,
        role="standby",
        active=holder.name,
        epoch=holder.role_epoch,
        lease_s=ttl,
        reason=f"'{holder.name}' holds the site's active lease (epoch {holder.role_epoch})",
    )


def _change(state: State, gateway: str, site_id: int, body: RoleRequest, ttl: float) -> RoleAnswer:
    """A role change: a write, so the documents that name the pair's roles follow."""
    reason = body.reason or ("took the active role" if body.role == "active" else "left the active role")
    with state.write(f"gateway:{gateway}") as change:
        _lock_site(change.session, site_id)
        now = state.clock()
        rows = list(change.session.scalars(select(GatewayRow).where(GatewayRow.site_id == site_id)))
        mine = next(r for r in rows if r.name == gateway)
        epoch = max(r.role_epoch for r in rows)
        if body.role == "active":
            holder = _holder(rows, gateway, now)
            if holder is not None:
                raise _Held(holder)
            if mine.role != "active":
                epoch = max(body.epoch, epoch + 1)  # the agent's own count, if it decided alone meanwhile
            changed = {gateway: ("active", reason)}
            changed |= {
                r.name: ("standby", f"'{gateway}' took the active role: {reason}")
                for r in rows
                if r.name != gateway and r.role != "standby"
            }
        else:
            changed = {gateway: ("standby", reason)}
        for row in rows:
            if row.name not in changed:
                continue
            role, why = changed[row.name]
            before = {"role": row.role, "epoch": row.role_epoch}
            row.role, row.role_reason = role, why[:200]
            if before["role"] != role:
                row.role_since = now
            row.role_epoch = epoch if role == "active" or row.role_epoch > epoch else row.role_epoch
            row.lease_until = now + ttl if role == "active" else None
            old = change.topo.gateways[row.name]
            change.replace_object("gateway", row.name, replace(old, role=role, role_epoch=row.role_epoch))
            change.record("role", "gateway", row.name, before, {"role": role, "epoch": row.role_epoch, "reason": why})
        answer = RoleAnswer(
            granted=True,
            role=body.role,
            active=gateway if body.role == "active" else None,
            epoch=epoch,
            lease_s=ttl if body.role == "active" else 0.0,
            reason=reason,
        )
    for name, (role, why) in changed.items():
        log_event(log, "gateway.role", gateway=name, role=role, epoch=epoch, reason=why)
    return answer
