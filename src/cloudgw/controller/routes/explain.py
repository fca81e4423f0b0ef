"""`POST /api/v1/explain`: why can (or can't) SRC reach DST, hop by hop (mapping/explain.py)."""

from __future__ import annotations

import time
from ipaddress import IPv4Address
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select

from cloudgw.api import schemas
from cloudgw.controller import auth, views
from cloudgw.controller.db.models import GatewayRow
from cloudgw.controller.state import State
from cloudgw.mapping.explain import GatewayReport, PeerSeen, explain

router = APIRouter(prefix="/api/v1", tags=["status"])


def gateway_reports(state: State, offline_after: float, now: float) -> dict[str, GatewayReport]:
    names: dict[str, str] = {}
    reports = {}
    snap = state.snapshot()
    for gateway in snap.topo.gateways.values():
        if gateway.public_key:
            names[gateway.public_key] = gateway.name
    with state.session() as session:
        rows = list(session.scalars(select(GatewayRow)))
    for row in rows:
        status, bad = views.stored_heartbeat(row)
        seen = views._aware(row.last_seen)
        reports[row.name] = GatewayReport(
            name=row.name,
            online=views.online(row, offline_after, now),
            seen_age_s=round(now - seen.timestamp(), 1) if seen is not None else None,
            applied_revision=status.revision,
            doc_revision=row.doc_revision,
            peers=tuple(PeerSeen(p.public_key, p.last_handshake, tuple(p.allowed_ips)) for p in status.peers),
            path_warnings={p.peer: p.warning for p in status.paths if p.warning},
            path_mtu={p.peer: p.mtu for p in status.paths},
            problems={p.peer: p.problem for p in status.problems},
            last_error=bad or status.last_error,
        )
    return reports


@router.post("/explain", response_model=schemas.ExplainResult, summary="Why can SRC reach DST or not, hop by hop")
def explain_path(
    body: schemas.ExplainRequest,
    request: Request,
    state: State = Depends(auth.get_state),
    _who: auth.Principal = Depends(auth.reader),
) -> Any:
    started = time.perf_counter()
    now = time.time()
    reports = gateway_reports(state, float(request.app.state.settings.offline_after), now)
    result = explain(
        state.snapshot().topo, reports, IPv4Address(str(body.src)), IPv4Address(str(body.dst)), body.network, now
    )
    return {**result.as_dict(), "took_ms": round((time.perf_counter() - started) * 1000, 1)}
