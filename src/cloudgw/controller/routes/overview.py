"""`GET /api/v1/status`: every gateway and connection with its health, at a glance."""

from __future__ import annotations

import time
from collections import Counter
from itertools import islice
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from cloudgw.controller import auth, views
from cloudgw.controller.cloudsync import status_rows
from cloudgw.controller.db.models import ConnectionRow, GatewayRow
from cloudgw.controller.state import State
from cloudgw.errors import NotFound
from cloudgw.model.paging import MAX_LIMIT

router = APIRouter(prefix="/api/v1", tags=["status"])


@router.get("/status", summary="Every gateway and connection with its health, and counts of each state")
def status(
    request: Request,
    limit: int | None = Query(
        None, ge=0, le=MAX_LIMIT, description="list at most this many gateways and connections (the counts cover all)"
    ),
    state: State = Depends(auth.get_state),
    _who: auth.Principal = Depends(auth.reader),
) -> Any:
    offline_after = float(request.app.state.settings.offline_after)
    snap = state.snapshot()
    shown = limit if limit is not None else (int(request.app.state.settings.page_size) or None)
    with state.session() as session:
        gateway_rows = {g.name: g for g in session.scalars(select(GatewayRow).order_by(GatewayRow.name))}
        connection_rows = list(session.scalars(select(ConnectionRow).order_by(ConnectionRow.name)))
    now = time.time()
    gateway_states: Counter[str] = Counter()
    for row in gateway_rows.values():
        if row.name in snap.topo.gateways:
            joined = bool(row.public_key)
            gateway_states[
                "pending" if not joined else "online" if views.online(row, offline_after, now) else "offline"
            ] += 1
    connection_states: Counter[str] = Counter(
        views.connection_health(row, snap, gateway_rows, offline_after, now).state
        for row in connection_rows
        if row.name in snap.topo.connections
    )
    names = views.gateway_names(snap)
    gateways = [
        views.gateway_view(row, snap, offline_after, names).model_dump(mode="json")
        for row in islice((r for r in gateway_rows.values() if r.name in snap.topo.gateways), shown)
    ]
    connections = [
        views.connection_view(row, snap, gateway_rows, offline_after).model_dump(mode="json")
        for row in islice((r for r in connection_rows if r.name in snap.topo.connections), shown)
    ]
    return {
        "revision": snap.revision,
        "sites": len(snap.topo.sites),
        "networks": len(snap.topo.networks),
        "endpoints": len(snap.topo.announcements),
        # effective endpoints per site (what the dashboard charts), from the index: no list is read
        "endpoints_by_site": {
            site: n for site, n in sorted(_effective_by_site(snap).items()) if site in snap.topo.sites
        },
        "gateway_states": dict(sorted(gateway_states.items())),
        "connection_states": dict(sorted(connection_states.items())),
        "gateways": gateways,
        "connections": connections,
        "providers": [{**row, "checked_at": row["checked_at"].isoformat()} for row in status_rows(state)],
    }


def _effective_by_site(snap: Any) -> Counter[str]:
    counts: Counter[str] = Counter()
    for (_network, site), items in snap.index.effective.items():
        counts[site] += len(items)
    return counts


@router.get("/nat/sessions", summary="NAT sessions of a site's gateway, as of its last heartbeat")
def nat_sessions(
    site: str, request: Request, state: State = Depends(auth.get_state), _who: auth.Principal = Depends(auth.reader)
) -> Any:
    snap = state.snapshot()
    if site not in snap.topo.sites:
        raise NotFound("site", site)
    gateways = snap.topo.gateways_of(site)
    with state.session() as session:
        rows = {g.name: g for g in session.scalars(select(GatewayRow)) if g.name in {x.name for x in gateways}}
    result = []
    for name, row in sorted(rows.items()):
        status, _bad = views.stored_heartbeat(row)
        received = (row.status or {}).get("received_at")
        result.append(
            {
                "gateway": name,
                "count": status.nat_sessions,
                "sessions": [s.model_dump() for s in status.sessions],
                "as_of": received if isinstance(received, int | float) else None,
            }
        )
    return {"site": site, "gateways": result}
