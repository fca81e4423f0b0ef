"""Render each gateway's desired-state document from the topology (pure), and say which gateways a
change touches."""

from __future__ import annotations

from cloudgw.mapping.core import effective
from cloudgw.model.document import (
    ForwardSpec,
    GatewayDocument,
    GatewaySpec,
    NetworkSpec,
    PeerSpec,
    PoolSpec,
    RemoteEndpoint,
    TunnelSpec,
)
from cloudgw.model.topology import Topology

TUNNEL_INTERFACE = "cgw0"
DEFAULT_MTU = 1420


def active_peer_sites(topo: Topology, site: str, network: str | None = None) -> set[str]:
    """Connected sites that have a joined gateway (one with a public key)."""
    return {s for s in topo.connected_sites(site, network) if any(g.public_key for g in topo.gateways_of(s))}


def render_document(topo: Topology, gateway_name: str, revision: int) -> GatewayDocument:
    gateway = topo.gateways[gateway_name]
    site = gateway.site
    connections = topo.connections_of(site)
    mtu = min((c.mtu for c in connections), default=DEFAULT_MTU)

    networks = []
    for network in topo.networks_of(site):
        peers_here = active_peer_sites(topo, site, network.name)
        pools = [
            PoolSpec(site=p.site, range=p.range)
            for p in sorted(topo.pools_in(network.name), key=lambda p: p.range)
            if p.site == site or p.site in peers_here
        ]
        remote = []
        for ip, announcement in sorted(effective(topo, network.name).items()):
            owner = topo.gateways[announcement.gateway]
            if owner.site in peers_here and owner.public_key:
                remote.append(RemoteEndpoint(ip=ip, gateway=owner.name, mac=announcement.mac))
        lan_address = next((a for a in gateway.lan_addresses if a in network.cidr), None)
        egress = topo.egress_of(site, network.name)
        mode, via = egress.mode, None
        if mode == "via":
            # Until the site it leaves through has a joined gateway, the traffic stays in (never leaks
            # out locally against the admin's choice).
            via = next((g.name for g in topo.gateways_of(egress.via or "") if g.public_key), None)
            if via is None or egress.via not in peers_here:
                mode, via = "none", None
        transit = [
            p.range
            for p in sorted(topo.pools_in(network.name), key=lambda p: p.range)
            if p.site in peers_here
            and topo.egress_of(p.site, network.name).mode == "via"
            and topo.egress_of(p.site, network.name).via == site
        ]
        networks.append(
            NetworkSpec(
                name=network.name,
                cidr=network.cidr,
                lan_interface=gateway.lan_interface,
                lan_address=lan_address,
                pools=pools,
                remote_endpoints=remote,
                egress=mode,
                egress_via=via,
                transit=transit,
            )
        )

    peers = []
    for peer_site in sorted(active_peer_sites(topo, site)):
        shared = [c for c in connections if c.other(site) == peer_site]
        cidrs = [topo.networks[c.network].cidr for c in shared if c.network in topo.networks]
        for peer in topo.gateways_of(peer_site):
            if not peer.public_key:
                continue
            peers.append(
                PeerSpec(
                    name=peer.name,
                    site=peer_site,
                    public_key=peer.public_key,
                    endpoint=peer.endpoint,
                    keepalive=max(c.keepalive for c in shared),
                    lan_addresses=[a for a in peer.lan_addresses if any(a in c for c in cidrs)],
                )
            )

    return GatewayDocument(
        revision=revision,
        gateway=GatewaySpec(
            name=gateway.name,
            site=site,
            wan_interface=gateway.wan_interface,
            tunnel=TunnelSpec(interface=TUNNEL_INTERFACE, listen_port=gateway.listen_port, mtu=mtu),
        ),
        networks=networks,
        peers=peers,
        forwards=[
            ForwardSpec(
                name=f.name,
                protocol=f.protocol,
                public_port=f.public_port,
                target_ip=f.target_ip,
                target_port=f.target_port,
            )
            for f in sorted(topo.forwards.values(), key=lambda f: f.name)
            if f.gateway == gateway_name
        ],
    )


def touching_sites(topo: Topology, sites: set[str], network: str | None = None) -> set[str]:
    """Gateways of these sites and of every site connected to them (in that network)."""
    wanted = set(sites)
    for site in sites:
        wanted |= topo.connected_sites(site, network)
    return topo.gateways_for_sites(wanted)
