"""Effective mapping = what gateways announce AND what the admin's pools and connections allow.

An announcement is effective when the address lies in a pool of the announcing gateway's own site.
An address announced by two gateways is a conflict: it is reported, never silently overwritten; the
pool decides which one (if any) is effective.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address

from cloudgw.mapping.index import TopologyIndex
from cloudgw.model.topology import Announcement, Topology


@dataclass(frozen=True)
class Resolution:
    network: str
    ip: str
    state: str  # "effective", "not-allowed", "pool-only", "unknown"
    site: str | None = None
    gateway: str | None = None
    mac: str | None = None
    since: float | None = None
    reason: str = ""
    announcements: list[dict[str, object]] = field(default_factory=list)


def is_effective(topo: Topology, announcement: Announcement) -> bool:
    gateway = topo.gateways.get(announcement.gateway)
    if gateway is None:
        return False
    pool = topo.owner_pool(announcement.network, announcement.ip)
    return pool is not None and pool.site == gateway.site


def effective(topo: Topology, network: str) -> dict[IPv4Address, Announcement]:
    result: dict[IPv4Address, Announcement] = {}
    for (net, ip, _), announcement in topo.announcements.items():
        if net == network and is_effective(topo, announcement):
            result[ip] = announcement
    return result


def resolve(topo: Topology, network: str, ip: IPv4Address, index: TopologyIndex | None = None) -> Resolution:
    pool = topo.owner_pool(network, ip)
    announcements = topo.announcements_of(network, ip)
    moved = _moved(topo, network, ip, index)  # an L2 network: a VM that moved to another bridging site
    if moved is not None:
        site = topo.gateways[moved.gateway].site
        return Resolution(
            network,
            str(ip),
            "effective",
            site,
            moved.gateway,
            moved.mac,
            moved.first_seen,
            f"moved to site '{site}' (gateway '{moved.gateway}', same MAC): L2 network '{network}'"
            + (f", pool '{pool.name}' of site '{pool.site}'" if pool else ""),
            [{**item, "effective": item["gateway"] == moved.gateway} for item in _listed(topo, announcements)],
        )
    listed = _listed(topo, announcements)
    chosen = next((a for a in announcements if is_effective(topo, a)), None)
    if chosen is not None:
        site = topo.gateways[chosen.gateway].site
        others = [a.gateway for a in announcements if a is not chosen]
        reason = (
            f"announced by gateway '{chosen.gateway}' and inside pool '{pool.name}' of site '{site}'" if pool else ""
        )
        if others:
            reason += f"; also announced by {', '.join(others)} (conflict, not effective: outside their pools)"
        return Resolution(
            network, str(ip), "effective", site, chosen.gateway, chosen.mac, chosen.first_seen, reason, listed
        )
    if announcements:
        names = ", ".join(a.gateway for a in announcements)
        where = f"pool '{pool.name}' of site '{pool.site}'" if pool else "no pool"
        return Resolution(
            network,
            str(ip),
            "not-allowed",
            pool.site if pool else None,
            None,
            None,
            None,
            f"announced by {names}, but the address is in {where}, not in the announcer's site's pool",
            listed,
        )
    if pool is not None:
        return Resolution(
            network,
            str(ip),
            "pool-only",
            pool.site,
            None,
            None,
            None,
            f"in pool '{pool.name}' of site '{pool.site}', but no gateway has seen it yet",
            listed,
        )
    return Resolution(network, str(ip), "unknown", reason=f"{ip} is in no pool of network '{network}'")


def _listed(topo: Topology, announcements: list[Announcement]) -> list[dict[str, object]]:
    return [
        {
            "gateway": a.gateway,
            "site": topo.gateways[a.gateway].site if a.gateway in topo.gateways else None,
            "mac": a.mac,
            "first_seen": a.first_seen,
            "last_seen": a.last_seen,
            "effective": is_effective(topo, a),
        }
        for a in announcements
    ]


def validate_source(
    topo: Topology, gateway_name: str, source: IPv4Address, network: str | None = None
) -> tuple[bool, str]:
    """May a packet with this source arrive from this gateway? (What the receiver's WireGuard
    allowed-ips enforce in the kernel.)"""
    gateway = topo.gateways.get(gateway_name)
    if gateway is None:
        return False, f"unknown gateway '{gateway_name}'"
    if source in gateway.lan_addresses:
        return True, f"{source} is the LAN address of gateway '{gateway_name}'"
    if network:
        networks = [network]
    else:  # the networks this gateway's site takes part in
        networks = sorted(
            {p.network for p in topo.pools.values() if p.site == gateway.site}
            | {c.network for c in topo.connections_of(gateway.site, enabled_only=False)}
        )
    for name in networks:  # an L2 network: a VM may have moved between sites (docs/l2.md)
        moved = _moved(topo, name, source)
        if moved is not None:
            site = topo.gateways[moved.gateway].site
            if site == gateway.site:
                return True, f"{source} moved to site '{site}' (gateway '{moved.gateway}'): L2 network '{name}'"
            return False, f"{source} moved to site '{site}' (gateway '{moved.gateway}'), so it is dropped from here"
    owners = [pool for name in networks if (pool := topo.owner_pool(name, source)) is not None]
    for pool in owners:
        if pool.site == gateway.site:
            return (
                True,
                f"{source} is in pool '{pool.name}' of site '{pool.site}', which gateway '{gateway_name}' serves",
            )
    if owners:
        pool = owners[0]
        serving = [g.name for g in topo.gateways_of(pool.site)]
        behind = f" (gateway {', '.join(serving)})" if serving else ""
        return False, (
            f"{source} belongs to site '{pool.site}'{behind} by pool '{pool.name}'; gateway "
            f"'{gateway_name}' serves site '{gateway.site}', so it is dropped"
        )
    return False, f"{source} is in no pool of gateway '{gateway_name}''s networks; no gateway may send it"


def _moved(topo: Topology, network: str, ip: IPv4Address, index: TopologyIndex | None = None) -> Announcement | None:
    """The effective announcement of an address that moved away from its pool's site, if any
    (TopologyIndex._l2_effective decides; only L2 networks have moves)."""
    net = topo.networks.get(network)
    announcements = topo.announcements_of(network, ip)
    if net is None or net.mode != "l2" or not announcements:
        return None
    idx = index or TopologyIndex.build(topo)
    return next((a for a in announcements if idx.is_effective(a) and not is_effective(topo, a)), None)
