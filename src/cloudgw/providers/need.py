"""What the mapping asks of one site's cloud (pure): the remote addresses its gateway must answer
for, the remote pools, the peers that must reach its tunnel port, and the MTU its tunnels use."""

from __future__ import annotations

from ipaddress import IPv4Address

from cloudgw.mapping.resolve import effective
from cloudgw.model.addr import parse_host_port
from cloudgw.model.cloud import cloud_gateway
from cloudgw.model.defaults import LISTEN_PORT, TUNNEL_MTU
from cloudgw.model.topology import Topology
from cloudgw.providers.base import Need


def public_address(endpoint: str | None) -> IPv4Address | None:
    if endpoint is None:
        return None
    try:
        return IPv4Address(parse_host_port(endpoint)[0])
    except ValueError:
        return None  # a DNS name: a security group needs an address (preflight says so)


def need_for(topo: Topology, site: str) -> Need:
    record = topo.sites[site]
    gateway = cloud_gateway(topo, site)
    connections = topo.connections_of(site)
    names = {p.network for p in topo.pools.values() if p.site == site} | {c.network for c in connections}
    networks = tuple(sorted((n, topo.networks[n].cidr) for n in names if n in topo.networks))
    remote_ranges, remote_addresses, peers = [], set(), set()
    for name, _cidr in networks:
        others = topo.connected_sites(site, name)
        remote_ranges += [p.range for p in topo.pools_in(name) if p.site in others]
        for ip, announcement in effective(topo, name).items():
            owner = topo.gateways.get(announcement.gateway)
            if owner is not None and owner.site in others:
                remote_addresses.add(ip)
        for other in others:
            for peer in topo.gateways_of(other):
                address = public_address(peer.endpoint)
                if address is not None:
                    peers.add(address)
    return Need(
        site=site,
        provider=record.provider,
        gateway=gateway,
        active=active.name if (active := topo.active_gateway(site)) is not None else None,
        networks=networks,
        own_ranges=tuple(sorted(p.range for p in topo.pools.values() if p.site == site)),
        remote_ranges=tuple(sorted(remote_ranges)),
        remote_addresses=frozenset(remote_addresses),
        peers=frozenset(peers),
        listen_port=topo.gateways[gateway].listen_port if gateway is not None else LISTEN_PORT,
        tunnel_mtu=max((c.mtu for c in connections), default=TUNNEL_MTU),
    )
