"""Render each gateway's desired-state document from the topology (pure), and say which gateways a
change touches."""

from __future__ import annotations

from cloudgw.mapping.index import TopologyIndex
from cloudgw.mapping.index import l2_blocker as index_l2_blocker
from cloudgw.model.addr import usable_endpoint
from cloudgw.model.defaults import TUNNEL_INTERFACE, TUNNEL_MTU
from cloudgw.model.document import (
    CloudEndpoint,
    ForwardSpec,
    GatewayDocument,
    GatewaySpec,
    HaSpec,
    NetworkSpec,
    PartnerSpec,
    PeerSpec,
    PoolSpec,
    TunnelSpec,
    ha_port_of,
    vni_of,
)
from cloudgw.model.topology import Connection, HaTiming, Network, Topology, choose_active


def active_peer_sites(
    topo: Topology, site: str, network: str | None = None, index: TopologyIndex | None = None
) -> set[str]:
    """Connected sites that have a joined gateway (one with a public key)."""
    idx = index or TopologyIndex.build(topo)
    return {s for s in idx.connected_sites(site, network) if any(g.public_key for g in idx.gateways_by_site.get(s, []))}


def l2_blocker(topo: Topology, site: str, index: TopologyIndex | None = None) -> str | None:
    """Why a site stays L3 inside an L2 network (None: it bridges). Shown by the API and docs/l2.md."""
    idx = index or TopologyIndex.build(topo)
    return index_l2_blocker(topo, site, idx.gateways_by_site)


def _l2_site(topo: Topology, site: str, network: Network, idx: TopologyIndex) -> bool:
    if network.mode != "l2" or l2_blocker(topo, site, idx) is not None:
        return False
    gateways = idx.gateways_by_site.get(site, [])
    return bool(gateways) and any(a in network.cidr for a in gateways[0].lan_addresses)


def render_document(
    topo: Topology, gateway_name: str, revision: int, index: TopologyIndex | None = None
) -> GatewayDocument:
    idx = index or TopologyIndex.build(topo)
    gateway = topo.gateways[gateway_name]
    site = gateway.site
    connections = idx.connections_of(site)
    # the device takes the largest connection MTU; each peer's routes carry its own (see pathmtu.py)
    mtu = max((c.mtu for c in connections), default=TUNNEL_MTU)

    networks = []
    for name in sorted({c.network for c in connections}):
        network = topo.networks.get(name)
        if network is None:
            continue
        peers_here = active_peer_sites(topo, site, name, idx)
        pools = sorted(
            (
                PoolSpec(site=p.site, range=p.range)
                for s in peers_here | {site}
                for p in idx.pools_by_site.get((name, s), [])
            ),
            key=lambda p: p.range,
        )
        remote = [e for peer_site in peers_here for e in idx.remote_endpoints(name, peer_site)]
        if len(peers_here) > 1:  # each site's list is sorted already
            remote.sort(key=lambda e: (int(e.ip), e.gateway))
        lan_address = next((a for a in gateway.lan_addresses if a in network.cidr), None)
        egress = topo.egress_of(site, name)
        mode, via = egress.mode, None
        if mode == "via":
            # Until the site it leaves through has a joined gateway, the traffic stays in (never leaks
            # out locally against the admin's choice).
            via = next((g.name for g in idx.gateways_by_site.get(egress.via or "", []) if g.public_key), None)
            if via is None or egress.via not in peers_here:
                mode, via = "none", None
        transit = sorted(
            p.range
            for s in peers_here
            if topo.egress_of(s, name).mode == "via" and topo.egress_of(s, name).via == site
            for p in idx.pools_by_site.get((name, s), [])
        )
        listed = topo.inventory.get(f"{site}/{name}")
        cloud = (
            [CloudEndpoint.model_construct(ip=ip, mac=mac) for ip, mac in listed.endpoints]  # valid: from the topology
            if listed is not None and listed.gateway == gateway_name
            else []
        )
        l2 = _l2_site(topo, site, network, idx) and lan_address is not None
        networks.append(
            NetworkSpec(
                name=name,
                cidr=network.cidr,
                mode="l2" if l2 else "l3",
                flood=l2 and network.flood,
                vni=vni_of(name) if l2 else 0,
                l2_sites=sorted(s for s in peers_here if _l2_site(topo, s, network, idx)) if l2 else [],
                lan_interface=gateway.lan_interface,
                lan_address=lan_address,
                pools=pools,
                remote_endpoints=remote,
                egress=mode,
                egress_via=via,
                transit=transit,
                cloud_endpoints=cloud,
            )
        )

    peers = []
    by_peer_site: dict[str, list[Connection]] = {}
    for c in connections:  # grouped once: a hub's document has a peer per connection (O(n), not O(n^2))
        by_peer_site.setdefault(c.other(site), []).append(c)
    for peer_site in sorted(active_peer_sites(topo, site, None, idx)):
        shared = by_peer_site.get(peer_site, [])
        cidrs = [topo.networks[c.network].cidr for c in shared if c.network in topo.networks]
        members = [g for g in idx.gateways_by_site.get(peer_site, []) if g.public_key]
        active = choose_active(idx.gateways_by_site.get(peer_site, []))
        for peer in members:
            assert peer.public_key is not None
            peers.append(
                PeerSpec.model_construct(  # valid: from the topology (checked when written); a hub has 1,000s
                    name=peer.name,
                    site=peer_site,
                    public_key=peer.public_key,
                    endpoint=usable_endpoint(peer.endpoint),
                    keepalive=max(c.keepalive for c in shared),
                    mtu=min(c.mtu for c in shared),
                    lan_addresses=[a for a in peer.lan_addresses if any(a in c for c in cidrs)],
                    role="active"
                    if len(members) == 1 or (active is not None and peer.name == active.name)
                    else "standby",
                    epoch=active.role_epoch if active is not None else 0,
                    ha_port=ha_port_of(peer.listen_port),
                    routed=list(topo.sites[peer_site].routed) if peer_site in topo.sites else [],
                )
            )

    partners = [g for g in idx.gateways_by_site.get(site, []) if g.name != gateway.name and g.public_key]
    timing = topo.sites[site].ha if site in topo.sites else HaTiming()
    own_active = choose_active(idx.gateways_by_site.get(site, []))
    return GatewayDocument(
        revision=revision,
        gateway=GatewaySpec(
            name=gateway.name,
            site=site,
            wan_interface=gateway.wan_interface,
            tunnel=TunnelSpec(interface=TUNNEL_INTERFACE, listen_port=gateway.listen_port, mtu=mtu),
            priority=gateway.priority,
            role="active" if own_active is None or own_active.name == gateway.name else "standby",
            epoch=own_active.role_epoch if own_active is not None else 0,
            partners=[
                PartnerSpec(
                    name=g.name,
                    public_key=g.public_key,
                    priority=g.priority,
                    lan_addresses=list(g.lan_addresses),
                    endpoint=usable_endpoint(g.endpoint),
                    ha_port=ha_port_of(g.listen_port),
                )
                for g in sorted(partners, key=lambda g: g.name)
                if g.public_key  # (filtered above; mypy needs it said here)
            ],
            ha=HaSpec(interval_ms=timing.interval_ms, dead_ms=timing.dead_ms, failback=timing.failback),
            # only those inside this gateway's networks and outside every pool (rules refuse the others)
            virtual_addresses=[
                a
                for a in timing.addresses
                if any(a in n.cidr for n in networks) and not any(a in p.range for n in networks for p in n.pools)
            ],
            # a router on the LAN in front of the site's routed prefixes, when it is in one of the networks
            **(
                {"routed": list(topo.sites[site].routed), "routed_via": next_hop}
                if site in topo.sites
                and not topo.sites[site].external
                and (next_hop := topo.sites[site].routed_via) is not None
                and any(next_hop in n.cidr for n in networks)
                else {}
            ),
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
