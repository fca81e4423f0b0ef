"""The dashboard (static files, no build step, nothing from a CDN), its live event stream, and the
controller's /metrics."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cloudgw.controller import auth
from cloudgw.controller.state import State
from cloudgw.errors import NotFound

STATIC = Path(__file__).resolve().parents[2] / "web" / "static"
router = APIRouter(tags=["dashboard"])
TICK_S = 2.0


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/docs", include_in_schema=False)
def api_docs() -> FileResponse:
    """The API reference, rendered from /openapi.json by our own script: no third-party host."""
    return FileResponse(STATIC / "docs.html")


@router.get("/api/v1/whoami", summary="The caller's token name and role")
def whoami(who: auth.Principal = Depends(auth.principal)) -> dict[str, Any]:
    return {"name": who.name, "role": who.role, "gateway": who.gateway}


@router.get("/api/v1/events", summary="Server-sent events: `revision` on every change, `tick` every 2 s")
async def events(
    request: Request, state: State = Depends(auth.get_state), _who: auth.Principal = Depends(auth.reader)
) -> StreamingResponse:
    bus = request.app.state.bus

    async def stream() -> AsyncIterator[str]:
        last = -1
        next_tick = 0.0
        while not await request.is_disconnected():
            revision = bus.revision or state.db_revision()
            if revision != last:
                last = revision
                yield f"event: revision\ndata: {json.dumps({'revision': revision})}\n\n"
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + TICK_S
                yield f"event: tick\ndata: {json.dumps({'at': time.time()})}\n\n"
            await bus.wait(min(TICK_S, max(0.05, next_tick - time.monotonic())))
            await asyncio.sleep(0)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("/api/v1/connections/{name}/throughput", summary="Throughput over the last hour, from heartbeats")
def throughput(
    name: str,
    request: Request,
    minutes: float = Query(60, gt=0, le=60),
    state: State = Depends(auth.get_state),
    _who: auth.Principal = Depends(auth.reader),
) -> dict[str, Any]:
    topo = state.snapshot().topo
    connection = topo.connections.get(name)
    if connection is None:
        raise NotFound("connection", name)
    sides = [topo.gateways_of(connection.site_a), topo.gateways_of(connection.site_b)]
    points: list[dict[str, float]] = []
    if all(sides) and sides[1][0].public_key:
        points = request.app.state.telemetry.rates(sides[0][0].name, sides[1][0].public_key)
    since = time.time() - minutes * 60
    return {
        "connection": name,
        "from": sides[0][0].name if sides[0] else None,
        "to": sides[1][0].name if sides[1] else None,
        "points": [p for p in points if p["t"] >= since],
    }


@router.get("/metrics", summary="Prometheus metrics (needs a token, like every call)")
def metrics(request: Request, _who: auth.Principal = Depends(auth.reader)) -> Response:
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
