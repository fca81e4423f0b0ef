"""Render a gateway document into the kernel objects cloudgw wants (pure).

Design notes (L3 stretch)
Per remote site, per network:
  - one WireGuard peer whose allowed-ips are that site's pools and its gateway's LAN addresses: the
    kernel drops any decrypted packet whose source is not in them (the receiver rejects forged
    sources);
  - one prefix route per remote pool into the tunnel device.
Per remote endpoint (what the mapping service says lives behind a peer):
  - a /32 route into the tunnel device and a proxy-neighbour entry on the LAN device: a local VM ARPs
    for the remote address, the gateway answers with its own MAC and routes the packet into the
    tunnel. The kernel answers proxy ARP only when forwarding is on and the route to the target leaves
    by another device, which the /32 route guarantees.
Scale: two kernel objects per remote endpoint and one per remote pool; 10,000 endpoints are 20,000
netlink messages, applied as a diff, so a change touches only what changed.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from cloudgw.dataplane.desired import (
    KernelState,
    ProxyNeighbour,
    Route,
    Secret,
    TunnelLink,
    WgDevice,
    WgPeer,
)
from cloudgw.dataplane.nftrender import LanFilter, TunnelFilter, build_ruleset, forward_rules
from cloudgw.model.addr import AddressRange, collapse, host_network
from cloudgw.model.document import GatewayDocument


def peer_allowed_ips(doc: GatewayDocument) -> dict[str, list[IPv4Network]]:
    """Per peer name: every address that peer may send from (and that we send to it)."""
    site_of_peer = {peer.site: peer.name for peer in doc.peers}
    allowed: dict[str, list[IPv4Network]] = {peer.name: [] for peer in doc.peers}
    for net in doc.networks:
        for pool in net.pools:
            owner = site_of_peer.get(pool.site)
            if owner is not None:
                allowed[owner].extend(pool.range.cidrs())
        for endpoint in net.remote_endpoints:
            allowed[endpoint.gateway].append(host_network(endpoint.ip))
    for peer in doc.peers:
        allowed[peer.name].extend(host_network(address) for address in peer.lan_addresses)
    return {name: collapse(nets) for name, nets in allowed.items()}


def render(doc: GatewayDocument, private_key: str, resolved_endpoints: dict[str, str] | None = None) -> KernelState:
    """Everything the kernel should hold for this document.

    `resolved_endpoints` maps a peer's configured endpoint (maybe a DNS name) to "ip:port"; resolution
    is I/O, so the caller does it. Unresolved endpoints are passed through unchanged.
    """
    resolved = resolved_endpoints or {}
    tunnel = doc.gateway.tunnel
    dev = tunnel.interface
    allowed = peer_allowed_ips(doc)

    peers = {}
    for peer in doc.peers:
        address = resolved.get(peer.endpoint, peer.endpoint) if peer.endpoint else None
        peers[(dev, peer.public_key)] = WgPeer(dev, peer.public_key, address, tuple(allowed[peer.name]), peer.keepalive)

    routes: dict[IPv4Network, Route] = {}
    neighbours: set[ProxyNeighbour] = set()
    remote_sources: list[AddressRange] = []
    lan_filters: list[LanFilter] = []
    peer_sites = {peer.site for peer in doc.peers}
    for net in doc.networks:
        src: IPv4Address | None = net.lan_address
        for pool in net.pools:
            if pool.site in peer_sites:
                remote_sources.append(pool.range)
                for prefix in pool.range.cidrs():
                    routes[prefix] = Route(prefix, dev, src)
        for endpoint in net.remote_endpoints:
            routes[host_network(endpoint.ip)] = Route(host_network(endpoint.ip), dev, src)
            neighbours.add(ProxyNeighbour(endpoint.ip, net.lan_interface))
        lan_filters.append(LanFilter(net.lan_interface, tuple(doc.local_pools(net))))
    for peer in doc.peers:
        for lan_address in peer.lan_addresses:
            # The gateway's own packets must leave with an address the peer accepts: its LAN address.
            own = next((net.lan_address for net in doc.networks if lan_address in net.cidr), None)
            routes[host_network(lan_address)] = Route(host_network(lan_address), dev, own)
            remote_sources.append(AddressRange(lan_address, lan_address))

    # send_redirects is effective if "all" OR the device says so, hence both.
    sysctls = {"net/ipv4/ip_forward": "1", "net/ipv4/conf/all/send_redirects": "0"}
    for net in doc.networks:
        # The gateway forwards LAN traffic back out of the LAN only by mistake; never tell VMs so.
        sysctls[f"net/ipv4/conf/{net.lan_interface}/send_redirects"] = "0"
        # Answer proxy ARP at once: Linux otherwise delays each answer by a random 0-800 ms, which
        # every first packet to a remote VM would wait for.
        sysctls[f"net/ipv4/neigh/{net.lan_interface}/proxy_delay"] = "0"

    tunnel_filter = TunnelFilter(dev, tuple(sorted(set(remote_sources))))
    nft = build_ruleset(forward_rules(lan_filters, tunnel_filter))
    return KernelState(
        links={dev: TunnelLink(dev, tunnel.mtu)},
        devices={dev: WgDevice(dev, tunnel.listen_port, Secret(private_key))},
        peers=peers,
        sysctls=sysctls,
        neighbours=frozenset(neighbours),
        routes=routes,
        nft=nft,
    )
