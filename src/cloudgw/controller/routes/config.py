"""Routers of the configuration resources: sites, networks, pools, gateways, connections."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from cloudgw.api import schemas
from cloudgw.controller import config_writes as ops
from cloudgw.controller import views
from cloudgw.controller.db.models import (
    BurstRow,
    ConnectionRow,
    EgressRow,
    ForwardRow,
    GatewayRow,
    NetworkRow,
    PoolRow,
    SiteRow,
)
from cloudgw.controller.routes import filters
from cloudgw.controller.routes.crud import crud_router
from cloudgw.controller.state import Snapshot, State


def _offline_after(request: Request) -> float:
    return float(request.app.state.settings.offline_after)


def _sites(request: Request, state: State, snap: Snapshot, rows: list[Any]) -> list[Any]:
    connections = views.connections_by_site(snap)
    return [views.site_view(row, snap, connections) for row in rows]


def _networks(request: Request, state: State, snap: Snapshot, rows: list[Any]) -> list[Any]:
    return [views.network_view(row, snap) for row in rows]


def _pools(request: Request, state: State, snap: Snapshot, rows: list[Any]) -> list[Any]:
    return [views.pool_view(row, snap) for row in rows if row.name in snap.topo.pools]


def _gateways(request: Request, state: State, snap: Snapshot, rows: list[Any]) -> list[Any]:
    names = views.gateway_names(snap)
    return [
        views.gateway_view(row, snap, _offline_after(request), names) for row in rows if row.name in snap.topo.gateways
    ]


def _connections(request: Request, state: State, snap: Snapshot, rows: list[Any]) -> list[Any]:
    shown = [snap.topo.connections[row.name] for row in rows if row.name in snap.topo.connections]
    gateway_rows = filters.gateway_rows_of(state, snap, {s for c in shown for s in (c.site_a, c.site_b)})
    return [
        views.connection_view(row, snap, gateway_rows, _offline_after(request))
        for row in rows
        if row.name in snap.topo.connections
    ]


def _egress_rows(state: State, names: list[str]) -> list[Any]:
    """Egress rules are named <site>-<network>, from the topology; their rows give the timestamps."""
    snap = state.snapshot()
    found = []
    with state.session() as session:
        for key in names:
            if key in snap.topo.egress:
                row = session.get(EgressRow, snap.ids["egress"][key])
                if row is not None:
                    found.append((snap.topo.egress[key], row))
    return found


def _egress(request: Request, state: State, snap: Snapshot, rows: list[Any]) -> list[Any]:
    return [
        schemas.EgressPublic(
            name=e.name,
            site=e.site,
            network=e.network,
            mode=e.mode,
            via=e.via,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for e, row in rows
    ]


def _forwards(request: Request, state: State, snap: Snapshot, rows: list[Any]) -> list[Any]:
    items = []
    for row in rows:
        forward = snap.topo.forwards.get(row.name)
        if forward is None:
            continue
        gateway = snap.topo.gateways[forward.gateway]
        host = gateway.endpoint.rsplit(":", 1)[0] if gateway.endpoint else None
        items.append(
            schemas.ForwardPublic(
                name=forward.name,
                gateway=forward.gateway,
                protocol=forward.protocol,
                public_port=forward.public_port,
                target_ip=forward.target_ip,
                target_port=forward.target_port,
                site=gateway.site,
                public_address=f"{host}:{forward.public_port}" if host else None,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
        )
    return items


def _bursts(request: Request, state: State, snap: Snapshot, rows: list[Any]) -> list[Any]:
    return [
        schemas.BurstPublic(
            **snap.topo.bursts[row.name].model_dump(), created_at=row.created_at, updated_at=row.updated_at
        )
        for row in rows
        if row.name in snap.topo.bursts
    ]


routers = [
    crud_router(
        "site",
        "sites",
        SiteRow,
        schemas.SiteCreate,
        schemas.SiteUpdate,
        schemas.SitePublic,
        schemas.SiteList,
        ops.creation("sites"),
        ops.operation("sites", "update"),
        ops.operation("sites", "delete"),
        _sites,
        filters.SiteFilters,
        filters.sites,
        cascade=True,
    ),
    crud_router(
        "network",
        "networks",
        NetworkRow,
        schemas.NetworkCreate,
        schemas.NetworkUpdate,
        schemas.NetworkPublic,
        schemas.NetworkList,
        ops.creation("networks"),
        ops.operation("networks", "update"),
        ops.operation("networks", "delete"),
        _networks,
        filters.NetworkFilters,
        filters.networks,
        cascade=True,
    ),
    crud_router(
        "pool",
        "pools",
        PoolRow,
        schemas.PoolCreate,
        schemas.PoolUpdate,
        schemas.PoolPublic,
        schemas.PoolList,
        ops.creation("pools"),
        ops.operation("pools", "update"),
        ops.operation("pools", "delete"),
        _pools,
        filters.PoolFilters,
        filters.pools,
    ),
    crud_router(
        "gateway",
        "gateways",
        GatewayRow,
        schemas.GatewayCreate,
        schemas.GatewayUpdate,
        schemas.GatewayPublic,
        schemas.GatewayList,
        ops.creation("gateways"),
        ops.operation("gateways", "update"),
        ops.operation("gateways", "delete"),
        _gateways,
        filters.GatewayFilters,
        filters.gateways,
    ),
    crud_router(
        "connection",
        "connections",
        ConnectionRow,
        schemas.ConnectionCreate,
        schemas.ConnectionUpdate,
        schemas.ConnectionPublic,
        schemas.ConnectionList,
        ops.creation("connections"),
        ops.operation("connections", "update"),
        ops.operation("connections", "delete"),
        _connections,
        filters.ConnectionFilters,
        filters.connections,
    ),
    crud_router(
        "egress rule",
        "egress",
        EgressRow,
        schemas.EgressCreate,
        schemas.EgressUpdate,
        schemas.EgressPublic,
        schemas.EgressList,
        ops.creation("egress"),
        ops.operation("egress", "update"),
        ops.operation("egress", "delete"),
        _egress,
        filters.EgressFilters,
        filters.egress,
        fetch=_egress_rows,
    ),
    crud_router(
        "forward",
        "forwards",
        ForwardRow,
        schemas.ForwardCreate,
        schemas.ForwardUpdate,
        schemas.ForwardPublic,
        schemas.ForwardList,
        ops.creation("forwards"),
        ops.operation("forwards", "update"),
        ops.operation("forwards", "delete"),
        _forwards,
        filters.ForwardFilters,
        filters.forwards,
    ),
    crud_router(
        "burst policy",
        "bursts",
        BurstRow,
        schemas.BurstCreate,
        schemas.BurstUpdate,
        schemas.BurstPublic,
        schemas.BurstList,
        ops.creation("bursts"),
        ops.operation("bursts", "update"),
        ops.operation("bursts", "delete"),
        _bursts,
        filters.BurstFilters,
        filters.bursts,
    ),
]
