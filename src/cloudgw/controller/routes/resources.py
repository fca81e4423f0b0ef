"""Routers of the configuration resources: sites, networks, pools, gateways, connections."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import select

from cloudgw.controller import resources as ops
from cloudgw.controller import schemas, views
from cloudgw.controller.db.models import ConnectionRow, GatewayRow, NetworkRow, PoolRow, SiteRow
from cloudgw.controller.routes.crud import crud_router
from cloudgw.controller.state import State


def _offline_after(request: Request) -> float:
    return float(request.app.state.settings.offline_after)


def _sites(request: Request, state: State, rows: list[Any]) -> list[Any]:
    snap = state.snapshot()
    return [views.site_view(row, snap) for row in rows]


def _networks(request: Request, state: State, rows: list[Any]) -> list[Any]:
    return [views.network_view(row) for row in rows]


def _pools(request: Request, state: State, rows: list[Any]) -> list[Any]:
    snap = state.snapshot()
    return [views.pool_view(row, snap) for row in rows if row.name in snap.topo.pools]


def _gateways(request: Request, state: State, rows: list[Any]) -> list[Any]:
    snap = state.snapshot()
    return [views.gateway_view(row, snap, _offline_after(request)) for row in rows if row.name in snap.topo.gateways]


def _connections(request: Request, state: State, rows: list[Any]) -> list[Any]:
    snap = state.snapshot()
    with state.session() as session:
        gateway_rows = {g.name: g for g in session.scalars(select(GatewayRow))}
    return [
        views.connection_view(row, snap, gateway_rows, _offline_after(request))
        for row in rows
        if row.name in snap.topo.connections
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
        ops.operation("sites", "create"),
        ops.operation("sites", "update"),
        ops.operation("sites", "delete"),
        _sites,
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
        ops.operation("networks", "create"),
        ops.operation("networks", "update"),
        ops.operation("networks", "delete"),
        _networks,
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
        ops.operation("pools", "create"),
        ops.operation("pools", "update"),
        ops.operation("pools", "delete"),
        _pools,
    ),
    crud_router(
        "gateway",
        "gateways",
        GatewayRow,
        schemas.GatewayCreate,
        schemas.GatewayUpdate,
        schemas.GatewayPublic,
        schemas.GatewayList,
        ops.operation("gateways", "create"),
        ops.operation("gateways", "update"),
        ops.operation("gateways", "delete"),
        _gateways,
    ),
    crud_router(
        "connection",
        "connections",
        ConnectionRow,
        schemas.ConnectionCreate,
        schemas.ConnectionUpdate,
        schemas.ConnectionPublic,
        schemas.ConnectionList,
        ops.operation("connections", "create"),
        ops.operation("connections", "update"),
        ops.operation("connections", "delete"),
        _connections,
    ),
]
