"""Server-side filters of the configuration lists: one query-parameter class and one matcher per
resource. A matcher picks names from the topology snapshot (in memory, no table scan) in name order,
the order every list pages in, from the snapshot's sorted copy (sorted once per revision). (No
`from __future__ import annotations`: FastAPI reads these classes' signatures as query parameters.)"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Query
from sqlalchemy import select

from cloudgw.controller import views
from cloudgw.controller.db.models import ConnectionRow, GatewayRow
from cloudgw.controller.state import Snapshot, State

Text = Annotated[
    str | None, Query(max_length=64, description="a substring of the name (and what the list says), any case")
]
Name = Annotated[str | None, Query(max_length=64)]


def _has(text: str | None, *fields: object) -> bool:
    return text is None or any(text.lower() in str(f).lower() for f in fields if f is not None)


@dataclass
class SiteFilters:
    provider: Annotated[str | None, Query(max_length=32, description="only sites of this provider")] = None
    q: Text = None


@dataclass
class NetworkFilters:
    mode: Annotated[Literal["l3", "l2"] | None, Query(description="only networks in this mode")] = None
    q: Text = None


@dataclass
class PoolFilters:
    network: Annotated[str | None, Query(max_length=64, description="only pools of this network")] = None
    site: Annotated[str | None, Query(max_length=64, description="only pools of this site")] = None
    q: Text = None


@dataclass
class GatewayFilters:
    site: Annotated[str | None, Query(max_length=64, description="only gateways of this site")] = None
    state: Annotated[
        Literal["online", "offline", "pending"] | None,
        Query(description="online (heartbeat within offline_after), offline (joined, silent) or pending (not joined)"),
    ] = None
    q: Text = None


@dataclass
class ConnectionFilters:
    network: Annotated[str | None, Query(max_length=64, description="only connections of this network")] = None
    site: Annotated[str | None, Query(max_length=64, description="only connections with this site at one end")] = None
    state: Annotated[
        Literal["up", "degraded", "down", "pending", "disabled"] | None,
        Query(description="only connections in this health"),
    ] = None
    q: Text = None


@dataclass
class EgressFilters:
    site: Annotated[str | None, Query(max_length=64, description="only this site's rules")] = None
    network: Annotated[str | None, Query(max_length=64, description="only this network's rules")] = None


@dataclass
class ForwardFilters:
    gateway: Annotated[str | None, Query(max_length=64, description="only this gateway's forwards")] = None
    protocol: Annotated[Literal["tcp", "udp"] | None, Query(description="only this protocol")] = None
    q: Text = None


@dataclass
class BurstFilters:
    network: Annotated[str | None, Query(max_length=64, description="only policies of this network")] = None
    site: Annotated[str | None, Query(max_length=64, description="only policies that launch at this site")] = None
    q: Text = None


Matcher = Callable[[State, Snapshot, Any, float], list[str]]


def sites(state: State, snap: Snapshot, f: SiteFilters, offline_after: float) -> list[str]:
    return [
        s.name
        for s in snap.in_order("sites")
        if (f.provider is None or s.provider == f.provider) and _has(f.q, s.name, s.description)
    ]


def networks(state: State, snap: Snapshot, f: NetworkFilters, offline_after: float) -> list[str]:
    return [
        n.name
        for n in snap.in_order("networks")
        if (f.mode is None or n.mode == f.mode) and _has(f.q, n.name, n.cidr, n.description)
    ]


def pools(state: State, snap: Snapshot, f: PoolFilters, offline_after: float) -> list[str]:
    return [
        p.name
        for p in snap.in_order("pools")
        if (f.network is None or p.network == f.network)
        and (f.site is None or p.site == f.site)
        and _has(f.q, p.name, p.range)
    ]


def gateways(state: State, snap: Snapshot, f: GatewayFilters, offline_after: float) -> list[str]:
    chosen = [
        g
        for g in snap.in_order("gateways")
        if (f.site is None or g.site == f.site) and _has(f.q, g.name, g.endpoint, g.site)
    ]
    if f.state == "pending":
        chosen = [g for g in chosen if not g.public_key]
    elif f.state is not None:
        cutoff = time.time() - offline_after
        with state.session() as session:
            seen = {name: last for name, last in session.execute(select(GatewayRow.name, GatewayRow.last_seen))}
        want_online = f.state == "online"
        chosen = [g for g in chosen if g.public_key and (_seen_after(seen.get(g.name), cutoff) == want_online)]
    return [g.name for g in chosen]


def _seen_after(last_seen: Any, cutoff: float) -> bool:
    stamp = views._aware(last_seen)
    return stamp is not None and stamp.timestamp() >= cutoff


def connections(state: State, snap: Snapshot, f: ConnectionFilters, offline_after: float) -> list[str]:
    chosen = [
        c
        for c in snap.in_order("connections")
        if (f.network is None or c.network == f.network)
        and (f.site is None or c.joins(f.site))
        and _has(f.q, c.name, c.site_a, c.site_b)
    ]
    if f.state is not None:
        rows = gateway_rows_of(state, snap, {s for c in chosen for s in (c.site_a, c.site_b)})
        with state.session() as session:
            connection_rows = {r.name: r for r in session.scalars(select(ConnectionRow))}
        now = time.time()
        chosen = [
            c
            for c in chosen
            if c.name in connection_rows
            and views.connection_health(connection_rows[c.name], snap, rows, offline_after, now).state == f.state
        ]
    return [c.name for c in chosen]


def egress(state: State, snap: Snapshot, f: EgressFilters, offline_after: float) -> list[str]:
    return [
        e.name
        for e in snap.in_order("egress")
        if (f.site is None or e.site == f.site) and (f.network is None or e.network == f.network)
    ]


def forwards(state: State, snap: Snapshot, f: ForwardFilters, offline_after: float) -> list[str]:
    return [
        x.name
        for x in snap.in_order("forwards")
        if (f.gateway is None or x.gateway == f.gateway)
        and (f.protocol is None or x.protocol == f.protocol)
        and _has(f.q, x.name, x.gateway, x.target_ip)
    ]


def bursts(state: State, snap: Snapshot, f: BurstFilters, offline_after: float) -> list[str]:
    return [
        b.name
        for b in snap.in_order("bursts")
        if (f.network is None or b.network == f.network) and (f.site is None or b.site == f.site) and _has(f.q, b.name)
    ]


def gateway_rows_of(state: State, snap: Snapshot, sites: set[str]) -> dict[str, GatewayRow]:
    """The gateway rows of these sites, by name (what connection health reads)."""
    names = [g.name for site in sites for g in snap.index.gateways_by_site.get(site, [])]
    with state.session() as session:
        return {g.name: g for g in session.scalars(select(GatewayRow).where(GatewayRow.name.in_(names)))}
