"""Lookups for rendering many documents from one topology snapshot (pure). Built once per snapshot,
so rendering a gateway's document costs what that document holds, not the size of the whole
topology: at 1,000 gateways and 100,000 endpoints, the per-document scans of every gateway,
connection and announcement cost seconds per change. When only one gateway's announcements
change (the common case: an agent reports its endpoints), `with_announcements` derives the next
index from the last one in time proportional to that site's endpoints."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address

from cloudgw.model.document import RemoteEndpoint
from cloudgw.model.topology import Announcement, Connection, Gateway, Group, Pool, Topology, choose_active


@dataclass
class TopologyIndex:
    gateways_by_site: dict[str, list[Gateway]] = field(default_factory=dict)
    external: set[str] = field(default_factory=set)  # sites with a stock router: their pools are declared
    site_of: dict[str, str] = field(default_factory=dict)  # gateway -> site
    joined: set[str] = field(default_factory=set)  # gateways with a public key
    connections_by_site: dict[str, list[Connection]] = field(default_factory=dict)  # enabled only
    pools_by_network: dict[str, list[Pool]] = field(default_factory=dict)  # sorted by range
    pools_by_site: dict[tuple[str, str], list[Pool]] = field(default_factory=dict)  # (network, site)
    announced: dict[tuple[str, str], Group] = field(default_factory=dict)  # (network, gateway) -> group
    effective: dict[tuple[str, str], list[tuple[IPv4Address, Announcement]]] = field(default_factory=dict)
    effective_keys: set[tuple[str, int, str]] = field(default_factory=set)  # (network, ip, gateway)
    # per network: pools sorted by first address, and those first addresses, for bisection (pools are
    # disjoint, so the owner of an address is the last pool starting at or before it)
    owners: dict[str, tuple[list[int], list[Pool]]] = field(default_factory=dict)
    # L2 networks: the sites in each that bridge (an address may move between them, docs/l2.md)
    l2_sites: dict[str, set[str]] = field(default_factory=dict)
    # (network, site) -> that site's effective endpoints as documents list them, made on first use:
    # every gateway connected to the site gets the same list (1,000 spokes of one hub: one list)
    _remote: dict[tuple[str, str], list[RemoteEndpoint]] = field(default_factory=dict, repr=False, compare=False)

    def owner(self, network: str, ip: IPv4Address) -> Pool | None:
        starts, pools = self.owners.get(network, ([], []))
        position = bisect.bisect_right(starts, int(ip)) - 1
        if position >= 0 and int(ip) <= int(pools[position].range.last):
            return pools[position]
        return None

    def is_effective(self, announcement: Announcement) -> bool:
        return (announcement.network, int(announcement.ip), announcement.gateway) in self.effective_keys

    def remote_endpoints(self, network: str, site: str) -> list[RemoteEndpoint]:
        """The site's effective endpoints in this network that sit behind a joined gateway, sorted."""
        cached = self._remote.get((network, site))
        if cached is None:
            members = self.gateways_by_site.get(site, [])
            if site in self.external:
                # an external site learns nothing: every address of its pools is in use, behind its router
                router = next((g.name for g in members if g.public_key), None)
                cached = (
                    [
                        RemoteEndpoint.model_construct(ip=ip, gateway=router, mac=None)  # valid: from the topology
                        for pool in self.pools_by_site.get((network, site), [])
                        for ip in pool.range.addresses()
                    ]
                    if router is not None
                    else []
                )
            elif len(members) <= 1:
                cached = [
                    RemoteEndpoint.model_construct(ip=ip, gateway=a.gateway, mac=a.mac)  # valid: from the topology
                    for ip, a in self.effective.get((network, site), [])
                    if a.gateway in self.joined
                ]
            else:
                # an HA pair: both may announce an address (the old active's rows outlive it); it is
                # listed once, behind the pair's active gateway
                active = choose_active(members)
                owner = active.name if active is not None else ""
                cached, seen = [], set()
                for ip, a in self.effective.get((network, site), []):
                    if a.gateway in self.joined and ip not in seen:
                        seen.add(ip)
                        cached.append(RemoteEndpoint.model_construct(ip=ip, gateway=owner, mac=a.mac))
            self._remote[(network, site)] = cached
        return cached

    def would_be_effective(self, announcement: Announcement) -> bool:
        """Whether this announcement takes effect: its gateway exists and a pool of that gateway's
        site holds the address (in an L2 network, a pool of any site it may move between)."""
        site = self.site_of.get(announcement.gateway)
        owner = self.owner(announcement.network, announcement.ip) if site is not None else None
        if owner is not None and site in self.l2_sites.get(announcement.network, ()):
            return owner.site in self.l2_sites[announcement.network]
        return owner is not None and owner.site == site

    @classmethod
    def build(cls, topo: Topology) -> TopologyIndex:
        index = cls()
        index.external = {site.name for site in topo.sites.values() if site.external}
        for gateway in topo.gateways.values():
            index.gateways_by_site.setdefault(gateway.site, []).append(gateway)
            index.site_of[gateway.name] = gateway.site
            if gateway.public_key:
                index.joined.add(gateway.name)
        for connection in topo.connections.values():
            if connection.enabled:
                index.connections_by_site.setdefault(connection.site_a, []).append(connection)
                index.connections_by_site.setdefault(connection.site_b, []).append(connection)
        for pool in topo.pools.values():
            index.pools_by_network.setdefault(pool.network, []).append(pool)
            index.pools_by_site.setdefault((pool.network, pool.site), []).append(pool)
        for network, pools in index.pools_by_network.items():
            pools.sort(key=lambda p: p.range)
            ordered = sorted(pools, key=lambda p: int(p.range.first))
            index.owners[network] = ([int(p.range.first) for p in ordered], ordered)
        for net in topo.networks.values():
            if net.mode == "l2":
                index.l2_sites[net.name] = {
                    site for site in topo.sites if l2_blocker(topo, site, index.gateways_by_site) is None
                }
        for (network, ip, gateway_name), announcement in topo.announcements.items():
            index.announced.setdefault((network, gateway_name), {})[ip] = announcement
        for (network, gateway_name), group in index.announced.items():
            if network not in index.l2_sites:
                index._add_effective(network, gateway_name, group)
        for network in index.l2_sites:
            index._l2_effective(network)
        for items in index.effective.values():
            items.sort(key=lambda item: (int(item[0]), item[1].gateway))
        return index

    def _add_effective(self, network: str, gateway: str, group: Group) -> None:
        site = self.site_of.get(gateway)
        if site is None:
            return
        items = self.effective.setdefault((network, site), [])
        for ip, announcement in group.items():
            owner = self.owner(network, ip)
            if owner is not None and owner.site == site:
                items.append((ip, announcement))
                self.effective_keys.add((network, int(ip), gateway))

    def _l2_effective(self, network: str) -> None:
        """An L2 network's effective endpoints, every site at once: an address announced at a
        bridging site other than its pool's is a VM that moved there (same MAC, same address). It
        takes effect when its announcement is the newest and carries the MAC the pool's site had
        for it (or that site announces it no more); a different MAC is a conflict, not a move."""
        sites = self.l2_sites[network]
        by_ip: dict[IPv4Address, list[Announcement]] = {}
        for (net, _gateway), group in self.announced.items():
            if net == network:
                for ip, announcement in group.items():
                    by_ip.setdefault(ip, []).append(announcement)
        for key in [key for key in self.effective if key[0] == network]:
            self.effective[key] = []
        self.effective_keys = {key for key in self.effective_keys if key[0] != network}
        for key in [key for key in self._remote if key[0] == network]:
            del self._remote[key]
        for ip, announcements in by_ip.items():
            owner = self.owner(network, ip)
            if owner is None:
                continue
            home = [a for a in announcements if self.site_of.get(a.gateway) == owner.site]
            chosen = home
            if owner.site in sites:
                movers = [
                    a
                    for a in announcements
                    if self.site_of.get(a.gateway) in sites and self.site_of.get(a.gateway) != owner.site
                ]
                newest = max(movers, key=lambda a: a.first_seen, default=None)
                if newest is not None and (
                    not home
                    or (
                        newest.first_seen > max(a.first_seen for a in home)
                        and newest.mac is not None
                        and all(a.mac == newest.mac for a in home)
                    )
                ):
                    chosen = [newest]
            for announcement in chosen:
                site = self.site_of[announcement.gateway]
                self.effective.setdefault((network, site), []).append((ip, announcement))
                self.effective_keys.add((network, int(ip), announcement.gateway))
        for key, items in self.effective.items():
            if key[0] == network:
                items.sort(key=lambda item: (int(item[0]), item[1].gateway))

    def with_announcements(self, network: str, gateway: str, group: Group) -> TopologyIndex:
        """The index of the same topology in which this gateway now announces exactly `group` in this
        network. Shares everything that did not change with this index (which stays valid)."""
        site = self.site_of[gateway]
        old = self.announced.get((network, gateway), {})
        index = replace(
            self, announced=dict(self.announced), effective=dict(self.effective), _remote=dict(self._remote)
        )
        index._remote.pop((network, site), None)
        index.effective_keys = self.effective_keys - {(network, int(ip), gateway) for ip in old}
        if group:
            index.announced[(network, gateway)] = group
        else:
            index.announced.pop((network, gateway), None)
        if network in self.l2_sites:  # a move changes two sites' lists: the network is redone
            index.effective_keys = set(index.effective_keys)
            index._l2_effective(network)
            return index
        # The site's effective list is rebuilt from its gateways' groups: the others keep theirs.
        index.effective[(network, site)] = []
        for member in self.gateways_by_site.get(site, []):
            index._add_effective(network, member.name, index.announced.get((network, member.name), {}))
        index.effective[(network, site)].sort(key=lambda item: (int(item[0]), item[1].gateway))
        return index

    def with_gateways(self, gateways: Iterable[Gateway]) -> TopologyIndex | None:
        """The index of the same topology in which these gateways changed in place (a join's key and
        endpoint, a role change): same names, same sites. Shares what did not change; a join at
        1,000 sites no longer rebuilds the whole index. None where a gateway can change more than
        these lists (an L2 network: which sites bridge depends on the gateways): build it anew."""
        if self.l2_sites:
            return None
        index = replace(
            self, gateways_by_site=dict(self.gateways_by_site), joined=set(self.joined), _remote=dict(self._remote)
        )
        for gateway in gateways:
            site = self.site_of.get(gateway.name)
            if site is None or site != gateway.site:
                return None
            index.gateways_by_site[site] = [
                gateway if g.name == gateway.name else g for g in index.gateways_by_site.get(site, [])
            ]
            if gateway.public_key:
                index.joined.add(gateway.name)
            else:
                index.joined.discard(gateway.name)
            for key in [key for key in index._remote if key[1] == site]:  # listed behind a joined, active gateway
                del index._remote[key]
        return index

    def connections_of(self, site: str, network: str | None = None) -> list[Connection]:
        return [c for c in self.connections_by_site.get(site, []) if network is None or c.network == network]

    def connected_sites(self, site: str, network: str | None = None) -> set[str]:
        return {c.other(site) for c in self.connections_of(site, network)}

    def gateways_for_sites(self, sites: Iterable[str]) -> set[str]:
        return {g.name for site in set(sites) for g in self.gateways_by_site.get(site, ())}


def l2_blocker(topo: Topology, site: str, gateways_by_site: dict[str, list[Gateway]]) -> str | None:
    """Why a site stays L3 inside an L2 network (None: it bridges). Shown by the API and docs/l2.md."""
    record = topo.sites.get(site)
    if record is None:
        return "unknown site"
    if record.external:
        return "an external site is a plain WireGuard router: it is routed to (L3)"
    if record.provider == "aws":
        return "AWS drops broadcast and answers ARP itself: its VMs are reached by proxy ARP and routes (L3)"
    if len(gateways_by_site.get(site, [])) > 1:
        return "a site with an HA pair stays L3 inside an L2 network (one bridge per site; docs/l2.md)"
    return None
