"""Render a gateway document into the kernel objects cloudgw wants (pure).

What every mode shares: one WireGuard peer per remote gateway whose allowed-ips are that site's
pools, the endpoints mapped behind it and its gateway's LAN addresses (the kernel drops any decrypted
packet whose source is not in them: the receiver rejects forged sources), a host route to each peer
gateway's LAN address, sysctls, egress and the filter. What a network needs beyond that comes from
its mode (dataplane/modes: l3 = host routes and proxy ARP, l2 = VXLAN inside the tunnel).

Internet egress (NAPT)
  - local: the site's pools are masqueraded out of the WAN (never traffic to a stretched network).
  - via PEER: policy rules send the pools' traffic that matches nothing more specific than a default
    route (`lookup main suppress_prefixlength 0`, then `from POOL lookup 207`) into the tunnel, whose
    table 207 holds a default route; PEER's allowed-ips gain 0.0.0.0/0 so the Internet's answers are
    accepted from it (WireGuard's longest-prefix check still refuses other sites' addresses from it).
    PEER lists our pools as `transit` and masquerades them out of its WAN.
  - none: the pools' packets to the WAN are dropped and counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from cloudgw.dataplane.kernelstate import (
    EGRESS_TABLE,
    MAIN_TABLE,
    RULE_PRIORITY,
    KernelState,
    LanAddress,
    PolicyRule,
    ProxyNeighbour,
    Route,
    Secret,
    TunnelLink,
    WgDevice,
    WgPeer,
)
from cloudgw.dataplane.modes import Context, Desired, mode_of
from cloudgw.dataplane.nftrender import Filters, build_ruleset, gateway_rules
from cloudgw.model.addr import AddressRange, collapse, host_network
from cloudgw.model.document import GatewayDocument

DEFAULT = IPv4Network("0.0.0.0/0")


@dataclass(frozen=True)
class LocalFacts:
    """What the agent knows about this machine and its paths that the document cannot say."""

    peer_mtu: Mapping[str, int] = field(default_factory=dict)  # peer name -> tunnel MTU its path carries
    control: tuple[tuple[IPv4Address, int], ...] = ()  # the controller's (address, TCP port): never cut it off


def _literal(endpoint: str) -> str | None:
    """An endpoint that is already ADDRESS:PORT needs no resolution."""
    host, _, port = endpoint.rpartition(":")
    try:
        return f"{IPv4Address(host)}:{int(port)}"
    except ValueError:
        return None


def route_mtus(doc: GatewayDocument, local: LocalFacts) -> dict[str, int | None]:
    """Per peer: the route MTU of its routes, or None when the device's MTU already fits."""
    result: dict[str, int | None] = {}
    for peer in doc.peers:
        wanted = min(peer.mtu or doc.gateway.tunnel.mtu, local.peer_mtu.get(peer.name, doc.gateway.tunnel.mtu))
        result[peer.name] = wanted if wanted < doc.gateway.tunnel.mtu else None
    return result


def peer_allowed_ips(doc: GatewayDocument) -> dict[str, list[IPv4Network]]:
    """Per peer name: every address that peer may send from (and that we send to it)."""
    return doc.allowed_ips()


def filters(doc: GatewayDocument, control: tuple[tuple[IPv4Address, int], ...] = ()) -> Filters:
    peer_sites = {peer.site for peer in doc.peers}
    local: dict[str, tuple[AddressRange, ...]] = {}
    remote: list[AddressRange] = []
    by_egress: dict[str, list[AddressRange]] = {"local": [], "via": [], "none": []}
    transit: list[AddressRange] = []
    for net in doc.networks:
        pools = doc.local_pools(net)
        local[net.lan_interface] = local.get(net.lan_interface, ()) + tuple(pools)
        remote.extend(pool.range for pool in net.pools if pool.site in peer_sites)
        by_egress[net.egress].extend(pools)
        transit.extend(net.transit)
    remote.extend(AddressRange(a, a) for peer in doc.peers for a in peer.lan_addresses)
    routed = [prefix for peer in doc.peers for prefix in peer.routed]
    remote.extend(AddressRange(prefix.network_address, prefix.broadcast_address) for prefix in routed)
    own_lan = _routed_lan(doc)
    if own_lan is not None:  # this site's routed prefixes come from the LAN, through its router
        extra = tuple(AddressRange(p.network_address, p.broadcast_address) for p in doc.gateway.routed)
        local[own_lan] = local.get(own_lan, ()) + extra
        routed += doc.gateway.routed
    return Filters(
        wan=doc.gateway.wan_interface,
        tunnel=doc.gateway.tunnel.interface,
        listen_port=doc.gateway.tunnel.listen_port,
        wan_open_ports=tuple(doc.gateway.wan_open_ports),
        lan_sources=tuple(sorted(local.items())),
        remote_sources=tuple(sorted(set(remote))),
        internal=tuple(collapse([*(net.cidr for net in doc.networks), *routed])),  # never NATed
        masquerade=tuple(sorted(set(by_egress["local"] + transit))),
        via_sources=tuple(sorted(set(by_egress["via"]))),
        blocked_sources=tuple(sorted(set(by_egress["none"]))),
        transit=tuple(sorted(set(transit))),
        forwards=tuple((f.protocol, f.public_port, f.target_ip, f.target_port) for f in doc.forwards),
        control=control,
        ha_port=doc.gateway.ha_port if doc.gateway.partners else None,
        ha_from=tuple(sorted({a for p in doc.gateway.partners if (a := _endpoint_address(p.endpoint))})),
    )


def _routed_lan(doc: GatewayDocument) -> str | None:
    """The LAN interface the site's own routed prefixes are behind (the one holding routed_via)."""
    via = doc.gateway.routed_via
    if via is None or not doc.gateway.routed:
        return None
    return next((net.lan_interface for net in doc.networks if via in net.cidr), None)


def _endpoint_address(endpoint: str | None) -> IPv4Address | None:
    literal = _literal(endpoint) if endpoint else None
    return IPv4Address(literal.rsplit(":", 1)[0]) if literal else None


def render(
    doc: GatewayDocument,
    private_key: str,
    resolved_endpoints: dict[str, str] | None = None,
    local: LocalFacts | None = None,
) -> KernelState:
    """Everything the kernel should hold for this document.

    `resolved_endpoints` maps a peer's configured endpoint (maybe a DNS name) to "ip:port"; resolution
    is I/O, so the caller does it. A peer whose endpoint is not in it gets none.
    """
    resolved = resolved_endpoints or {}
    local = local or LocalFacts()
    mtus = route_mtus(doc, local)
    site_of_peer = doc.active_peers()
    tunnel = doc.gateway.tunnel
    # a standby gateway of a pair keeps everything ready but answers no ARP on the LAN: VMs send to
    # the active one (docs/ha.md)
    answers_arp = doc.gateway.role == "active"
    dev = tunnel.interface
    allowed = peer_allowed_ips(doc)

    peers = {}
    for peer in doc.peers:
        # only an address the caller resolved: a name WireGuard cannot use is never passed on (the
        # peer then has no endpoint until it calls us, and the caller reports why)
        address = resolved.get(peer.endpoint, _literal(peer.endpoint)) if peer.endpoint else None
        peers[(dev, peer.public_key)] = WgPeer(dev, peer.public_key, address, tuple(allowed[peer.name]), peer.keepalive)

    out = Desired()
    rules: set[PolicyRule] = set()
    add_route = out.route
    context = Context(doc, dev, mtus, site_of_peer, answers_arp)
    for net in doc.networks:
        mode_of(net)(context, net, out)  # the network's mode: routes and proxy ARP, or VXLAN (modes/)
        if net.egress == "via":
            for prefix in (c for pool in doc.local_pools(net) for c in pool.cidrs()):
                rules.add(PolicyRule(RULE_PRIORITY + 1, EGRESS_TABLE, src=prefix))
    if rules:
        rules.add(PolicyRule(RULE_PRIORITY, MAIN_TABLE, suppress_prefixlength=0))
        add_route(Route(DEFAULT, dev, None, EGRESS_TABLE))
    first_lan = next((net.lan_address for net in doc.networks if net.lan_address is not None), None)
    own_lan = _routed_lan(doc)
    if own_lan is not None:
        for prefix in doc.gateway.routed:  # the site's own routed network, through the router on its LAN
            add_route(Route(prefix, own_lan, None, via=doc.gateway.routed_via))
    for peer in doc.peers:
        if site_of_peer.get(peer.site) == peer.name:
            for prefix in peer.routed:  # a branch's own network: reached through the tunnel
                add_route(Route(prefix, dev, first_lan, mtu=mtus.get(peer.name)))
        for lan_address in peer.lan_addresses:
            # The gateway's own packets must leave with an address the peer accepts: its LAN address.
            net_of = next((net for net in doc.networks if lan_address in net.cidr), None)
            own = net_of.lan_address if net_of else None
            add_route(Route(host_network(lan_address), dev, own, mtu=mtus.get(peer.name)))
            if net_of is not None and answers_arp:
                # local VMs reach the peer gateway's own LAN address too (ARP answered here)
                out.neighbours.add(ProxyNeighbour(lan_address, net_of.lan_interface))

    addresses: set[LanAddress] = set()
    if answers_arp:  # the active gateway of a pair holds the site's virtual LAN addresses
        for virtual in doc.gateway.virtual_addresses:
            for net in doc.networks:
                if virtual in net.cidr:
                    addresses.add(LanAddress(IPv4Interface(f"{virtual}/{net.cidr.prefixlen}"), net.lan_interface))
                    break

    # send_redirects is effective if "all" OR the device says so, hence both.
    sysctls = {
        "net/ipv4/ip_forward": "1",
        "net/ipv4/conf/all/send_redirects": "0",
        # loose reverse-path check on the tunnel: the Internet's answers arrive there when a
        # site's egress goes through a peer
        f"net/ipv4/conf/{dev}/rp_filter": "2",
    }
    for net in doc.networks:
        sysctls[f"net/ipv4/conf/{net.lan_interface}/send_redirects"] = "0"
        # Answer proxy ARP at once: Linux otherwise delays each answer by a random 0-800 ms, which
        # every first packet to a remote VM would wait for.
        sysctls[f"net/ipv4/neigh/{net.lan_interface}/proxy_delay"] = "0"

    return KernelState(
        links={dev: TunnelLink(dev, tunnel.mtu)},
        devices={dev: WgDevice(dev, tunnel.listen_port, Secret(private_key))},
        peers=peers,
        sysctls=sysctls,
        neighbours=frozenset(out.neighbours),
        addresses=frozenset(addresses),
        routes=out.routes,
        rules=frozenset(rules),
        nft=build_ruleset(
            gateway_rules(
                replace(
                    filters(doc, local.control),
                    extra=tuple(out.nft),
                    bridged=tuple(sorted({vx.bridge for vx in out.vxlans.values()})),
                )
            )
        ),
        vxlans=out.vxlans,
        fdb=frozenset(out.fdb),
        arp=frozenset(out.arp),
    )
