"""Public representations of resources (rows + snapshot + heartbeats -> schemas)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from pydantic import ValidationError

from cloudgw.api.schemas import (
    ConnectionHealth,
    ConnectionPublic,
    GatewayPublic,
    Heartbeat,
    L2View,
    NetworkPublic,
    PeerReport,
    PoolPublic,
    SitePublic,
)
from cloudgw.controller.db.models import ConnectionRow, GatewayRow, NetworkRow, PoolRow, SiteRow
from cloudgw.controller.state import Snapshot
from cloudgw.mapping.documents import l2_blocker
from cloudgw.model.addr import usable_endpoint
from cloudgw.model.cloud import cloud_block, items_from_json
from cloudgw.model.defaults import TUNNEL_MTU, VXLAN_OVERHEAD
from cloudgw.model.document import vni_of

HANDSHAKE_FRESH_S = 180.0  # WireGuard re-handshakes every 2 minutes while keepalives flow


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def online(row: GatewayRow, offline_after: float, now: float | None = None) -> bool:
    seen = _aware(row.last_seen)
    return seen is not None and (now or time.time()) - seen.timestamp() <= offline_after


def connections_by_site(snap: Snapshot) -> dict[str, list[str]]:
    """Every connection's name under both its sites (disabled ones too), sorted: one pass for a
    whole page of sites instead of one scan per site."""
    found: dict[str, list[str]] = {}
    for connection in snap.topo.connections.values():
        for site in {connection.site_a, connection.site_b}:
            found.setdefault(site, []).append(connection.name)
    for names in found.values():
        names.sort()
    return found


def site_view(row: SiteRow, snap: Snapshot, connections: dict[str, list[str]] | None = None) -> SitePublic:
    connections = connections if connections is not None else connections_by_site(snap)
    return SitePublic(
        name=row.name,
        provider=row.provider,
        description=row.description,  # type: ignore[arg-type]
        **cloud_block(row.provider, items_from_json(row.cloud)),
        **({"ha": row.ha} if row.ha else {}),
        kind=row.kind,
        routed=row.routed or [],
        routed_via=row.routed_via,
        created_at=row.created_at,
        updated_at=row.updated_at,
        gateways=sorted(g.name for g in snap.index.gateways_by_site.get(row.name, [])),
        connections=connections.get(row.name, []),
    )


def network_view(row: NetworkRow, snap: Snapshot) -> NetworkPublic:
    return NetworkPublic(
        name=row.name,
        cidr=row.cidr,
        mode=row.mode,
        flood=row.flood,
        description=row.description,  # type: ignore[arg-type]
        created_at=row.created_at,
        updated_at=row.updated_at,
        l2=_l2_view(row.name, snap) if row.mode == "l2" else None,
    )


def _l2_view(network: str, snap: Snapshot) -> L2View:
    topo, index = snap.topo, snap.index
    mtus = [c.mtu for c in topo.connections.values() if c.network == network and c.enabled]
    sites = sorted({p.site for p in topo.pools.values() if p.network == network})
    return L2View(
        vni=vni_of(network),
        mtu=min(mtus, default=TUNNEL_MTU) - VXLAN_OVERHEAD,
        sites={site: f"l3: {why}" if (why := l2_blocker(topo, site, index)) else "l2" for site in sites},
    )


def pool_view(row: PoolRow, snap: Snapshot) -> PoolPublic:
    pool = snap.topo.pools[row.name]
    return PoolPublic(
        name=row.name,
        network=pool.network,
        site=pool.site,
        range=pool.range,
        size=pool.range.size,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


BAD_ENDPOINT = "the stored endpoint is not HOST:PORT; peers use none until it is set again"
BAD_HEARTBEAT = "the last heartbeat stored for this gateway is not valid; it is ignored until the next one"


def stored_heartbeat(row: GatewayRow) -> tuple[Heartbeat, str | None]:
    """The gateway's last heartbeat, re-checked: a row written by an older version or by hand must
    never make a view fail. An invalid one reads as empty, with a reason."""
    raw = row.status
    if not isinstance(raw, dict) or not raw:
        return Heartbeat(), None
    try:
        return Heartbeat.model_validate({k: v for k, v in raw.items() if k != "received_at"}), None
    except ValidationError:
        return Heartbeat(), BAD_HEARTBEAT


def gateway_names(snap: Snapshot) -> dict[str, str]:
    """Gateway names by public key: how tunnels name their peers."""
    return {g.public_key: g.name for g in snap.topo.gateways.values() if g.public_key}


def gateway_view(
    row: GatewayRow, snap: Snapshot, offline_after: float, names: dict[str, str] | None = None
) -> GatewayPublic:
    gateway = snap.topo.gateways[row.name]
    status, bad = stored_heartbeat(row)
    names = names if names is not None else gateway_names(snap)
    paths = {p.peer: p for p in status.paths}
    now = time.time()
    tunnels = []
    for p in status.peers:
        peer_name = names.get(p.public_key, p.public_key[:8] + "…")
        path = paths.get(peer_name)
        tunnels.append(
            {
                "peer": peer_name,
                "endpoint": p.endpoint,
                "rx_bytes": p.rx_bytes,
                "tx_bytes": p.tx_bytes,
                "handshake_age_s": round(now - p.last_handshake, 1) if p.last_handshake else None,
                "mtu": path.mtu if path else None,
                "path_mtu": path.path if path else None,
                "mtu_source": path.source if path else None,
                "mtu_warning": path.warning if path else None,
            }
        )
    return GatewayPublic(
        name=row.name,
        site=gateway.site,
        endpoint=usable_endpoint(row.endpoint),
        wan_interface=row.wan_interface,
        lan_interface=row.lan_interface,
        lan_addresses=list(gateway.lan_addresses),
        listen_port=row.listen_port,
        priority=row.priority,
        role=row.role if row.role in ("active", "standby") else None,
        role_epoch=row.role_epoch,
        role_reason=row.role_reason,
        role_since=datetime.fromtimestamp(row.role_since, UTC) if row.role_since else None,
        public_key=row.public_key,
        joined_at=_aware(row.joined_at),
        last_seen=_aware(row.last_seen),
        online=online(row, offline_after),
        version=row.version,
        doc_revision=row.doc_revision,
        applied_revision=status.revision,
        last_error=bad
        or (BAD_ENDPOINT if row.endpoint and usable_endpoint(row.endpoint) is None else None)
        or status.last_error,
        nat_sessions=status.nat_sessions,
        ha=status.ha,
        tunnels=tunnels,
        problems=status.problems,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def peer_stats(status: Heartbeat, public_key: str | None) -> PeerReport | None:
    for peer in status.peers:
        if public_key and peer.public_key == public_key:
            return peer
    return None


def connection_health(
    row: ConnectionRow,
    snap: Snapshot,
    gateway_rows: dict[str, GatewayRow],
    offline_after: float,
    now: float | None = None,
) -> ConnectionHealth:
    connection = snap.topo.connections[row.name]
    now = now or time.time()
    if not connection.enabled:
        return ConnectionHealth(state="disabled", reason="disabled by the admin")
    sides = []
    for site, other in ((connection.site_a, connection.site_b), (connection.site_b, connection.site_a)):
        gateways = snap.topo.gateways_of(site)
        peers = snap.topo.gateways_of(other)
        if not gateways or not peers:
            return ConnectionHealth(state="pending", reason=f"site '{site if not gateways else other}' has no gateway")
        gw, peer = gateway_rows.get(gateways[0].name), peers[0]
        if gw is None or not gw.public_key or not peer.public_key:
            return ConnectionHealth(state="pending", reason="a gateway has not joined yet")
        if not online(gw, offline_after, now):
            return ConnectionHealth(state="down", reason=f"gateway '{gw.name}' sends no heartbeat")
        sides.append(peer_stats(stored_heartbeat(gw)[0], peer.public_key))
    ages = [now - s.last_handshake for s in sides if s and s.last_handshake]
    rx = sum(s.rx_bytes for s in sides if s)
    tx = sum(s.tx_bytes for s in sides if s)
    if len(ages) < 2:
        return ConnectionHealth(state="down", rx_bytes=rx, tx_bytes=tx, reason="no WireGuard handshake yet")
    age = max(ages)
    if age > HANDSHAKE_FRESH_S:
        return ConnectionHealth(
            state="degraded",
            handshake_age_s=round(age, 1),
            rx_bytes=rx,
            tx_bytes=tx,
            reason=f"last handshake {age:.0f}s ago",
        )
    return ConnectionHealth(state="up", handshake_age_s=round(age, 1), rx_bytes=rx, tx_bytes=tx)


def connection_view(
    row: ConnectionRow, snap: Snapshot, gateway_rows: dict[str, GatewayRow], offline_after: float
) -> ConnectionPublic:
    connection = snap.topo.connections[row.name]
    return ConnectionPublic(
        name=row.name,
        network=connection.network,
        site_a=connection.site_a,
        site_b=connection.site_b,
        enabled=connection.enabled,
        mtu=connection.mtu,
        keepalive=connection.keepalive,
        health=connection_health(row, snap, gateway_rows, offline_after),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
