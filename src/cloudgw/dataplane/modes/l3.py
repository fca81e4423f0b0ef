"""The L3 mode: a remote VM is a host route into the tunnel plus a proxy-ARP entry on the LAN (pure).

A local VM ARPs for a remote address, the gateway answers with its own MAC and routes the packet
into the tunnel. The kernel answers proxy ARP only when forwarding is on and the route to the target
leaves by another device, which the /32 route guarantees. Remote pools get prefix routes too.
Scale: two kernel objects per remote endpoint and one per remote pool, applied as a diff.
"""

from __future__ import annotations

from collections.abc import Set

from cloudgw.dataplane.kernelstate import ProxyNeighbour, Route
from cloudgw.dataplane.modes import Context, Desired
from cloudgw.model.addr import host_network
from cloudgw.model.document import NetworkSpec


def render_network(ctx: Context, net: NetworkSpec, out: Desired, sites: Set[str] | None = None) -> None:
    """Routes and proxy-ARP entries towards the peer sites in `sites` (default: every peer site)."""
    routed = ctx.peer_sites if sites is None else set(sites) & ctx.peer_sites
    if not routed:
        return
    peers = ctx.doc.peer_by_name()
    for pool in net.pools:
        if pool.site in routed:
            for prefix in pool.range.cidrs():
                out.route(Route(prefix, ctx.tunnel, net.lan_address, mtu=ctx.mtus.get(ctx.site_of_peer[pool.site])))
    for endpoint in net.remote_endpoints:
        if peers[endpoint.gateway].site not in routed:
            continue
        out.route(Route(host_network(endpoint.ip), ctx.tunnel, net.lan_address, mtu=ctx.mtus.get(endpoint.gateway)))
        if ctx.answers_arp:
            out.neighbours.add(ProxyNeighbour(endpoint.ip, net.lan_interface))
