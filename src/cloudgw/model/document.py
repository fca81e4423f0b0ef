"""The desired-state document of one gateway: everything its agent needs to program the kernel.

The agent reads it from a file (`cloudgw agent run --state FILE`) or from the controller's watch feed;
both are the same document. It holds only what is *effective* for this gateway: its own site, the
networks it stretches, every site's pools in those networks, the remote endpoints the mapping service
places behind each peer, and the peers themselves. It never holds a private key.

Validation happens in two steps: pydantic checks each field's shape, then `check_document` checks the
relations between fields (overlaps, containment, references). Both report `Problem`s that name the
field, and `load_document` refuses the whole document if any is found.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Network
from itertools import combinations
from typing import Any, Literal

from pydantic import Field, ValidationError

from cloudgw.errors import InvalidInput, Problem
from cloudgw.model.addr import AddressRange, collapse, host_network
from cloudgw.model.defaults import HA_PORT_OFFSET, KEEPALIVE, LISTEN_PORT, TUNNEL_INTERFACE, TUNNEL_MTU
from cloudgw.model.fields import HostPort, IfName, IPv4, KeyField, MacField, Name, Port, RangeField, StrictModel
from cloudgw.model.textio import parse_yaml, pydantic_problems

OWNED_PREFIX = "cgw"  # cloudgw owns, and only ever deletes, links whose name starts with this


class TunnelSpec(StrictModel):
    interface: IfName = TUNNEL_INTERFACE  # the WireGuard device; must start with "cgw"
    listen_port: Port = LISTEN_PORT  # UDP port peers send to (behind 1:1 NAT: the same port outside)
    mtu: int = Field(TUNNEL_MTU, ge=1280, le=9000)  # 1420 = 1500 minus WireGuard's IPv4 overhead


Role = Literal["active", "standby"]


def ha_port_of(listen_port: int) -> int:
    """A gateway hears its pair's hellos and role notices on the UDP port after its tunnel's."""
    return listen_port + HA_PORT_OFFSET if listen_port < 65535 else listen_port - HA_PORT_OFFSET


class PartnerSpec(StrictModel):
    """Another gateway of this gateway's own site (an HA pair): watched on the LAN and the WAN."""

    name: Name
    public_key: KeyField  # the pair's hellos are signed with a key both derive from their WireGuard keys
    priority: int = Field(100, ge=1, le=255)
    lan_addresses: list[IPv4] = Field([], max_length=16)
    endpoint: HostPort | None = None  # its public HOST:PORT: hellos also go to HOST over the WAN
    ha_port: Port = LISTEN_PORT + HA_PORT_OFFSET  # where it listens for hellos (LAN and WAN)


class HaSpec(StrictModel):
    interval_ms: int = Field(200, ge=50, le=5000)
    dead_ms: int = Field(1000, ge=150, le=60_000)
    failback: bool = False


class GatewaySpec(StrictModel):
    name: Name
    site: Name
    wan_interface: IfName  # the interface towards the Internet: tunnel packets and NAPT leave here
    tunnel: TunnelSpec = TunnelSpec()
    wan_open_ports: list[Port] = [22]  # TCP ports of the gateway itself reachable from the WAN (ssh)
    # HA pair (docs/ha.md): none of this matters to a site's only gateway, which is always active
    priority: int = Field(100, ge=1, le=255)
    role: Role = "active"  # standby: ready, but answers no ARP for remote addresses on the LAN
    epoch: int = Field(0, ge=0)  # of the role agreement the controller last recorded for the site
    partners: list[PartnerSpec] = Field([], max_length=3)
    ha: HaSpec = HaSpec()
    # addresses the site's active gateway holds on its LAN (the VMs' default gateway): they move
    # with the active role, announced by gratuitous ARP
    virtual_addresses: list[IPv4] = Field([], max_length=8)
    # plain routed prefixes behind a router on this gateway's LAN (routed_via, in one of its networks)
    routed: list[IPv4Network] = Field([], max_length=64)
    routed_via: IPv4 | None = None

    @property
    def ha_port(self) -> int:
        return ha_port_of(self.tunnel.listen_port)


class PoolSpec(StrictModel):
    site: Name  # the site whose VMs take addresses from this range
    range: RangeField


class RemoteEndpoint(StrictModel):
    ip: IPv4
    gateway: Name  # the peer gateway behind which this address lives
    mac: MacField | None = None  # as announced by that gateway; informational in L3 mode


class CloudEndpoint(StrictModel):
    ip: IPv4
    mac: MacField | None = None


class NetworkSpec(StrictModel):
    name: Name
    cidr: IPv4Network
    # l3: proxy-ARP + host routes (works in every cloud, AWS too); l2: VXLAN inside the tunnel,
    # bridged with the LAN (lan_interface is then a Linux bridge), towards the sites in l2_sites;
    # the others are reached as in l3 (docs/l2.md)
    mode: Literal["l3", "l2"] = "l3"
    flood: bool = False  # l2: broadcast, multicast and unknown unicast go to every l2 site
    vni: int = Field(0, ge=0, le=16_777_215)  # l2: the VXLAN network identifier (vni_of the name)
    l2_sites: list[Name] = Field([], max_length=1000)  # l2: the peer sites bridged at layer 2
    lan_interface: IfName  # where this network's local VMs are
    lan_address: IPv4 | None = None  # the gateway's own address on that LAN (source of ARP probes)
    pools: list[PoolSpec] = []  # every site's pool in this network, this gateway's own included
    remote_endpoints: list[RemoteEndpoint] = []  # the effective mapping for other sites
    egress: Literal["local", "via", "none"] = "local"  # where this site's Internet traffic leaves
    egress_via: Name | None = None  # the peer gateway it leaves through, when egress is "via"
    transit: list[RangeField] = []  # other sites' pools whose Internet traffic leaves through us
    # VMs this site's cloud lists (providers): announced with what the gateway learns on its LAN
    cloud_endpoints: list[CloudEndpoint] = Field([], max_length=100_000)


class PeerSpec(StrictModel):
    name: Name
    site: Name
    public_key: KeyField
    endpoint: HostPort | None = None  # public HOST:PORT; None when the peer is behind NAT and calls us
    keepalive: int = Field(KEEPALIVE, ge=0, le=3600)  # seconds; keeps NAT mappings open, 0 = off
    lan_addresses: list[IPv4] = []  # the peer gateway's own LAN addresses, accepted as sources
    mtu: int | None = Field(None, ge=1280, le=9000)  # the connection's tunnel MTU (None: the tunnel's)
    role: Role = "active"  # of its site's pair: only the active peer carries the site's addresses
    ha_port: Port = LISTEN_PORT + HA_PORT_OFFSET  # where it hears role notices (through the tunnel)
    # plain routed prefixes behind this peer's site (outside the stretched networks): routed into the
    # tunnel, accepted as sources from the site's active peer only
    routed: list[IPv4Network] = Field([], max_length=64)
    epoch: int = Field(0, ge=0)  # of that role; an agent takes a newer one from the peer itself


class ForwardSpec(StrictModel):
    name: Name
    protocol: Literal["tcp", "udp"]
    public_port: Port  # on the gateway's WAN (behind 1:1 NAT: the same port on its public address)
    target_ip: IPv4  # a VM of this gateway's site
    target_port: Port


class GatewayDocument(StrictModel):
    version: Literal[1] = 1
    revision: int = Field(0, ge=0)  # bumped by the controller on every change that affects this gateway
    reason: str | None = Field(None, max_length=2000)  # why this revision was made ("update pool public-lab")
    gateway: GatewaySpec
    networks: list[NetworkSpec] = []
    peers: list[PeerSpec] = []
    forwards: list[ForwardSpec] = []  # port forwards from the WAN to local VMs

    def local_pools(self, network: NetworkSpec) -> list[AddressRange]:
        return [p.range for p in network.pools if p.site == self.gateway.site]

    def peer_by_name(self) -> dict[str, PeerSpec]:
        return {peer.name: peer for peer in self.peers}

    def allowed_ips(self) -> dict[str, list[IPv4Network]]:
        """Per peer name: every address that peer may send from (and that we send to it). Of a
        pair, only the active peer carries its site's addresses; the standby its own LAN address."""
        site_of_peer = self.active_peers()
        peers = self.peer_by_name()
        allowed: dict[str, list[IPv4Network]] = {peer.name: [] for peer in self.peers}
        for net in self.networks:
            for pool in net.pools:
                owner = site_of_peer.get(pool.site)
                if owner is not None:
                    allowed[owner].extend(pool.range.cidrs())
            for endpoint in net.remote_endpoints:
                allowed[site_of_peer[peers[endpoint.gateway].site]].append(host_network(endpoint.ip))
            if net.egress == "via" and net.egress_via in allowed:
                allowed[net.egress_via].append(IPv4Network("0.0.0.0/0"))  # the Internet's answers come back
        for peer in self.peers:
            allowed[peer.name].extend(host_network(address) for address in peer.lan_addresses)
            if site_of_peer.get(peer.site) == peer.name:
                allowed[peer.name].extend(peer.routed)
        return {name: collapse(nets) for name, nets in allowed.items()}

    def active_peers(self) -> dict[str, str]:
        """Per peer site: the name of its active peer (the only one, or the pair's active one)."""
        result: dict[str, str] = {}
        for peer in self.peers:
            if peer.role == "active" or peer.site not in result:
                result[peer.site] = peer.name
        return result


def vni_of(network: str) -> int:
    """A network's VXLAN identifier: the same on every gateway, from its name alone (1..16,777,214)."""
    return 1 + zlib.crc32(network.encode()) % 0xFFFFFE


def _pairs(items: list[Any]) -> Iterator[tuple[int, Any, int, Any]]:
    for i, left in enumerate(items):
        for j in range(i + 1, len(items)):
            yield i, left, j, items[j]


def _same(items: list[Any], key: Callable[[Any], Any]) -> list[tuple[int, int]]:
    """The pairs (i, j), i < j, whose keys are equal (None never matches), in the order _pairs
    yields them: grouped by key instead of comparing every pair (a hub's 1,000 peers were half a
    million comparisons per document)."""
    groups: dict[Any, list[int]] = {}
    for index, item in enumerate(items):
        value = key(item)
        if value is not None:
            groups.setdefault(value, []).append(index)
    return sorted((a, b) for members in groups.values() if len(members) > 1 for a, b in combinations(members, 2))


def _overlapping(ranges: list[AddressRange]) -> list[tuple[int, int]]:
    """The pairs (i, j), i < j, of ranges that overlap, in the order _pairs yields them: a sweep over
    the ranges sorted by first address, not every pair."""
    order = sorted(range(len(ranges)), key=lambda k: int(ranges[k].first))
    found = []
    for position, a in enumerate(order):
        last = int(ranges[a].last)
        for b in order[position + 1 :]:
            if int(ranges[b].first) > last:
                break
            found.append((min(a, b), max(a, b)))
    return sorted(found)


def _owners(pools: list[Any], disjoint: bool) -> Callable[[IPv4Address], list[Any]]:
    """ip -> the pools holding it: one bisection among disjoint pools (a hub's document lists 1,000
    pools and 100,000 endpoints), a scan otherwise (the overlap is reported anyway)."""
    if not disjoint:
        return lambda ip: [pool for pool in pools if ip in pool.range]
    ordered = sorted(pools, key=lambda pool: int(pool.range.first))
    starts = [int(pool.range.first) for pool in ordered]

    def find(ip: IPv4Address) -> list[Any]:
        at = bisect.bisect_right(starts, int(ip)) - 1
        return [ordered[at]] if at >= 0 and ip in ordered[at].range else []

    return find


def _check_network(doc: GatewayDocument, n: int, net: NetworkSpec) -> list[Problem]:
    problems: list[Problem] = []
    where = f"networks[{n}]"
    gw = doc.gateway
    sites = {gw.site} | {peer.site for peer in doc.peers}
    peers = doc.peer_by_name()

    if net.lan_interface in (gw.wan_interface, gw.tunnel.interface):
        problems.append(
            Problem(
                f"{where}.lan_interface",
                f"'{net.lan_interface}' is also the WAN or tunnel interface",
                "give the LAN its own interface",
            )
        )
    if net.lan_address is not None and net.lan_address not in net.cidr:
        problems.append(
            Problem(
                f"{where}.lan_address",
                f"{net.lan_address} is outside {net.cidr}",
                "use the gateway's address on that LAN",
            )
        )
    for p, pool in enumerate(net.pools):
        field = f"{where}.pools[{p}].range"
        if not pool.range.within(net.cidr):
            problems.append(
                Problem(field, f"{pool.range} is outside the network {net.cidr}", f"choose a range inside {net.cidr}")
            )
        elif net.cidr.prefixlen < 31 and (
            net.cidr.network_address in pool.range or net.cidr.broadcast_address in pool.range
        ):
            problems.append(
                Problem(
                    field,
                    f"{pool.range} includes the network or broadcast address of {net.cidr}",
                    "start after the network address and end before the broadcast address",
                )
            )
        if pool.site not in sites:
            problems.append(
                Problem(
                    f"{where}.pools[{p}].site",
                    f"unknown site '{pool.site}': neither this gateway's site nor a peer's",
                    "add a peer for that site or remove the pool",
                )
            )
        if net.lan_address is not None and pool.site != gw.site and net.lan_address in pool.range:
            problems.append(
                Problem(
                    f"{where}.lan_address",
                    f"{net.lan_address} lies in site '{pool.site}''s pool {pool.range}",
                    "use an address outside other sites' pools",
                )
            )
    overlapping = _overlapping([pool.range for pool in net.pools])
    for i, j in overlapping:
        left, right = net.pools[i], net.pools[j]
        problems.append(
            Problem(
                f"{where}.pools[{j}].range",
                f"{right.range} (site '{right.site}') overlaps pools[{i}] {left.range} (site '{left.site}')",
                "give each pool a disjoint range",
            )
        )

    if net.egress == "via":
        if net.egress_via is None or net.egress_via not in peers:
            problems.append(
                Problem(
                    f"{where}.egress_via",
                    f"'{net.egress_via}' is not a peer gateway",
                    "name the peer whose site's gateway the traffic should leave through",
                )
            )
    elif net.egress_via is not None:
        problems.append(
            Problem(f"{where}.egress_via", f"only used with egress: via (egress is {net.egress})", "remove it")
        )
    peer_ranges = [p.range for p in net.pools if p.site != gw.site]
    for t, transit in enumerate(net.transit):
        if not any(transit == r for r in peer_ranges):
            problems.append(Problem(f"{where}.transit[{t}]", f"{transit} is not a pool of a peer site in {net.name}"))

    # keyed and compared as integers: hashing an IPv4Address goes through hex(), and a network's
    # membership test through Python; an agent checks every remote endpoint of every document
    seen: dict[int, int] = {}
    owners_of = _owners(net.pools, disjoint=not overlapping)
    lowest, highest = int(net.cidr.network_address), int(net.cidr.broadcast_address)
    for e, endpoint in enumerate(net.remote_endpoints):
        field = f"{where}.remote_endpoints[{e}]"
        value = int(endpoint.ip)
        if value in seen:
            problems.append(
                Problem(
                    f"{field}.ip",
                    f"{endpoint.ip} is listed twice (also remote_endpoints[{seen[value]}])",
                    "list each address once",
                )
            )
            continue
        seen[value] = e
        peer = peers.get(endpoint.gateway)
        if peer is None:
            problems.append(
                Problem(f"{field}.gateway", f"unknown gateway '{endpoint.gateway}'", "name one of the peers")
            )
            continue
        if not lowest <= value <= highest:
            problems.append(Problem(f"{field}.ip", f"{endpoint.ip} is outside {net.cidr}"))
            continue
        owners = owners_of(endpoint.ip)
        # in an L2 network a VM may have moved between bridging sites (this one included), keeping
        # its address: it may then sit behind a peer whose pool does not hold it
        bridging = {*net.l2_sites, doc.gateway.site} if net.mode == "l2" and peer.site in net.l2_sites else set()
        if not any(pool.site == peer.site or pool.site in bridging for pool in owners):
            problems.append(
                Problem(
                    f"{field}.ip",
                    f"{endpoint.ip} is not in a pool of site '{peer.site}' (gateway '{peer.name}')",
                    "add it to that site's pool, or fix the address",
                )
            )
    return problems


def check_document(doc: GatewayDocument) -> list[Problem]:
    """Relations between fields; an empty list means the document is valid."""
    problems: list[Problem] = []
    gw = doc.gateway
    if not gw.tunnel.interface.startswith(OWNED_PREFIX):
        problems.append(
            Problem(
                "gateway.tunnel.interface",
                f"'{gw.tunnel.interface}' does not start with '{OWNED_PREFIX}'",
                f"name it {OWNED_PREFIX}0 (cloudgw only manages links named {OWNED_PREFIX}*)",
            )
        )
    if gw.wan_interface == gw.tunnel.interface:
        problems.append(
            Problem(
                "gateway.wan_interface",
                "is the tunnel interface itself",
                "name the interface that reaches the Internet",
            )
        )

    for i, left, j, right in _pairs(doc.networks):
        if left.name == right.name:
            problems.append(Problem(f"networks[{j}].name", f"'{right.name}' is used twice"))
        if left.cidr.overlaps(right.cidr):
            problems.append(
                Problem(
                    f"networks[{j}].cidr",
                    f"{right.cidr} overlaps networks[{i}] {left.cidr}",
                    "stretch each address space once",
                )
            )
        if left.mode == right.mode == "l2" and left.vni == right.vni:
            problems.append(
                Problem(f"networks[{j}].vni", f"{right.vni} is also the VNI of networks[{i}]", "rename one network")
            )
    for n, net in enumerate(doc.networks):
        problems.extend(_check_network(doc, n, net))
        if net.mode == "l2" and (net.lan_address is None or net.vni == 0):
            problems.append(
                Problem(
                    f"networks[{n}]",
                    "an l2 network needs the gateway's LAN address (the VXLAN endpoint) and a VNI",
                    "give the gateway a LAN address in the network",
                )
            )
        unknown = sorted(set(net.l2_sites) - {peer.site for peer in doc.peers})
        if unknown:
            problems.append(Problem(f"networks[{n}].l2_sites", f"{', '.join(unknown)} is no peer's site"))

    local_ranges = [pool.range for net in doc.networks for pool in net.pools if pool.site == gw.site]
    peers = doc.peers
    same_name = set(_same(peers, lambda p: p.name))
    same_key = set(_same(peers, lambda p: p.public_key))
    both_active = set(_same(peers, lambda p: p.site if p.role == "active" else None))
    for i, j in sorted(same_name | same_key | both_active):
        left, right = peers[i], peers[j]
        if (i, j) in same_name:
            problems.append(Problem(f"peers[{j}].name", f"'{right.name}' is used twice"))
        if (i, j) in same_key:
            problems.append(
                Problem(
                    f"peers[{j}].public_key", f"same key as peers[{i}] '{left.name}'", "each gateway has its own key"
                )
            )
        if (i, j) in both_active:
            problems.append(
                Problem(
                    f"peers[{j}].role",
                    f"site '{right.site}' has two active gateways ('{left.name}' and '{right.name}')",
                    "mark one of a pair active, the others standby",
                )
            )
    used: dict[tuple[str, int], int] = {}
    for f, forward in enumerate(doc.forwards):
        key = (forward.protocol, forward.public_port)
        if key in used:
            problems.append(
                Problem(
                    f"forwards[{f}].public_port",
                    f"{forward.protocol}/{forward.public_port} is already forwarded by forwards[{used[key]}]",
                    "use another public port",
                )
            )
        used[key] = f
        if forward.protocol == "udp" and forward.public_port == gw.tunnel.listen_port:
            problems.append(Problem(f"forwards[{f}].public_port", f"udp/{forward.public_port} is the tunnel port"))
        if not any(forward.target_ip in r for r in local_ranges):
            problems.append(
                Problem(
                    f"forwards[{f}].target_ip",
                    f"{forward.target_ip} is not in a pool of this site",
                    "forward to a VM of this gateway's site",
                )
            )
    if gw.routed and (gw.routed_via is None or not any(gw.routed_via in net.cidr for net in doc.networks)):
        problems.append(
            Problem("gateway.routed_via", "routed prefixes need a next hop in one of this gateway's networks")
        )
    for r, prefix in enumerate(gw.routed):
        if any(net.cidr.overlaps(prefix) for net in doc.networks):
            problems.append(Problem(f"gateway.routed[{r}]", f"{prefix} overlaps a stretched network"))
    for v, virtual in enumerate(gw.virtual_addresses):
        if not any(virtual in net.cidr for net in doc.networks):
            problems.append(
                Problem(f"gateway.virtual_addresses[{v}]", f"{virtual} is in none of this gateway's networks")
            )
        elif any(virtual in pool.range for net in doc.networks for pool in net.pools):
            problems.append(Problem(f"gateway.virtual_addresses[{v}]", f"{virtual} is in a pool: a VM's address"))
    for p, peer in enumerate(doc.peers):
        for r, prefix in enumerate(peer.routed):
            inside = next((net for net in doc.networks if net.cidr.overlaps(prefix)), None)
            if inside is not None:
                problems.append(
                    Problem(
                        f"peers[{p}].routed[{r}]",
                        f"{prefix} overlaps the stretched network {inside.cidr}",
                        "a routed prefix lies outside every stretched network",
                    )
                )
    for q, partner in enumerate(gw.partners):
        if partner.name == gw.name or partner.name in doc.peer_by_name():
            problems.append(Problem(f"gateway.partners[{q}].name", f"'{partner.name}' is this gateway or a peer"))
    for p, peer in enumerate(doc.peers):
        if peer.site == gw.site:
            problems.append(
                Problem(
                    f"peers[{p}].site", f"'{peer.site}' is this gateway's own site", "peers are gateways of other sites"
                )
            )
        if peer.name == gw.name:
            problems.append(Problem(f"peers[{p}].name", "is this gateway's own name"))
        for a, address in enumerate(peer.lan_addresses):
            if any(address in r for r in local_ranges):
                problems.append(Problem(f"peers[{p}].lan_addresses[{a}]", f"{address} is in this site's pool"))
    return problems


def load_document(data: Any, source: str = "document") -> GatewayDocument:
    """Validate plain data (parsed YAML/JSON) into a document, or raise InvalidInput naming each field."""
    if not isinstance(data, dict):
        raise InvalidInput(
            [Problem("", f"expected a mapping at the top level, got {type(data).__name__}")], what=source
        )
    try:
        doc = GatewayDocument.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(pydantic_problems(exc), what=source) from None
    problems = check_document(doc)
    if problems:
        raise InvalidInput(problems, what=source)
    return doc


def parse_document(text: str, source: str = "document") -> GatewayDocument:
    return load_document(parse_yaml(text, source), source)


def dump_document(doc: GatewayDocument) -> dict[str, Any]:
    return doc.model_dump(mode="json", exclude_none=True)
