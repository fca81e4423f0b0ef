"""`GET /api/v1/status`: every gateway and connection with its health, at a glance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select

from cloudgw.controller import auth, views
from cloudgw.controller.cloudsync import status_rows
from cloudgw.controller.db.models import ConnectionRow, GatewayRow
from cloudgw.controller.state import State
from cloudgw.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["status"])


@router.get("/status", summary="Every gateway and connection with its health")
def status(
    request: Request, state: State = Depends(auth.get_state), _who: auth.Principal = Depends(auth.reader)
) -> Any:
    offline_after = float(request.app.state.settings.offline_after)
    snap = state.snapshot()
    with state.session() as session:
        gateway_rows = {g.name: g for g in session.scalars(select(GatewayRow).order_by(GatewayRow.name))}
        connection_rows = list(session.scalars(select(ConnectionRow).order_by(ConnectionRow.name)))
    gateways = [
        views.gateway_view(row, snap, offline_after).model_dump(mode="json")
        for row in gateway_rows.values()
        if row.name in snap.topo.gateways
    ]
    connections = [
        views.connection_view(row, snap, gateway_rows, offline_after).model_dump(mode="json")
        for row in connection_rows
        if row.name in snap.topo.connections
    ]
    return {
        "revision": snap.revision,
        "sites": len(snap.topo.sites),
        "networks": len(snap.topo.networks),
        "endpoints": len(snap.topo.announcements),
        "gateways": gateways,
        "connections": connections,
        "providers": [{**row, "checked_at": row["checked_at"].isoformat()} for row in status_rows(state)],
    }


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
