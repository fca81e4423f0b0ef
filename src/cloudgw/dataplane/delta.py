"""The cheap case of a new document: only remote endpoints came or went (VMs booted or stopped).

Such a change never touches peers (an endpoint lies inside its site's pool, so allowed-ips do not
change), filters, sysctls or links: it is exactly one /32 route and one proxy-ARP entry per endpoint.
Computing those from the two endpoint lists is O(change), where rendering and diffing the whole
document is O(endpoints); on a gateway with 10,000 endpoints that is the difference between
milliseconds and half a second (pure).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from cloudgw.dataplane.kernelstate import MAIN_TABLE, KernelState, ProxyNeighbour, Route
from cloudgw.dataplane.plan import Action
from cloudgw.model.document import GatewayDocument


def _without_endpoints(doc: GatewayDocument) -> GatewayDocument:
    networks = [net.model_copy(update={"remote_endpoints": []}) for net in doc.networks]
    return doc.model_copy(update={"networks": networks, "revision": 0})


def _endpoints(doc: GatewayDocument) -> dict[tuple[str, int], str]:
    # keyed by the address as an int: hashing IPv4Address goes through hex() and dominated the time
    return {(net.name, int(e.ip)): e.gateway for net in doc.networks for e in net.remote_endpoints}


def endpoint_delta(
    old: GatewayDocument, new: GatewayDocument, state: KernelState, route_mtu: Mapping[str, int | None] | None = None
) -> tuple[list[Action], KernelState] | None:
    """(actions, new kernel state) if old and new differ only in remote endpoints, else None.
    `route_mtu` is the route MTU per peer gateway, as render gives it (`render.route_mtus`)."""
    mtus = route_mtu or {}
    if any(net.mode == "l2" for net in (*old.networks, *new.networks)):
        return None  # an L2 network's endpoints are forwarding entries and filter rules: full render
    if _without_endpoints(old) != _without_endpoints(new):
        return None
    before, after = _endpoints(old), _endpoints(new)
    networks = {net.name: net for net in new.networks}
    dev = new.gateway.tunnel.interface
    routes = dict(state.routes)
    neighbours = set(state.neighbours)
    peer_sites = {peer.site for peer in new.peers}
    pool_prefixes = {
        (MAIN_TABLE, prefix)
        for net in new.networks
        for pool in net.pools
        if pool.site in peer_sites
        for prefix in pool.range.cidrs()
        if prefix.prefixlen == 32
    }  # a pool needs these itself
    route_deletes, neighbour_deletes, neighbour_adds, route_adds = [], [], [], []
    for name, value in (key for key in before if key not in after):
        ip = IPv4Address(value)
        key = (MAIN_TABLE, IPv4Network((value, 32)))
        route = None if key in pool_prefixes else routes.pop(key, None)
        if route is not None:
            route_deletes.append(Action("delete", "route", str(route.dst), None, route))
        neighbour = ProxyNeighbour(ip, networks[name].lan_interface)
        if neighbour in neighbours:
            neighbours.discard(neighbour)
            neighbour_deletes.append(Action("delete", "neighbour", f"{ip} {neighbour.dev}", None, neighbour))
    for name, value in (key for key in after if key not in before):
        ip = IPv4Address(value)
        net = networks[name]
        route = Route(IPv4Network((value, 32)), dev, net.lan_address, mtu=mtus.get(after[(name, value)]))
        if routes.get(route.key) != route:
            routes[route.key] = route
            route_adds.append(Action("add", "route", str(route.dst), route, None))
        neighbour = ProxyNeighbour(ip, net.lan_interface)
        if neighbour not in neighbours:
            neighbours.add(neighbour)
            neighbour_adds.append(Action("add", "neighbour", f"{ip} {neighbour.dev}", neighbour, None))
    # the plan's order: deletes in reverse (routes, then neighbours), then adds (neighbours, then routes)
    actions = route_deletes + neighbour_deletes + neighbour_adds + route_adds
    return actions, replace(state, routes=routes, neighbours=frozenset(neighbours))
