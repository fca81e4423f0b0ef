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
        ops.create_site,
        ops.update_site,
        ops.delete_site,
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
        ops.create_network,
        ops.update_network,
        ops.delete_network,
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
        ops.create_pool,
        ops.update_pool,
        ops.delete_pool,
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
        ops.create_gateway,
        ops.update_gateway,
        ops.delete_gateway,
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
        ops.create_connection,
        ops.update_connection,
        ops.delete_connection,
        _connections,
    ),
]
