"""Kernel objects cloudgw owns, as plain values. Desired state (rendered from a document) and observed
state (read from the kernel, owned objects only) are the same type, so a plan is a diff of two values.

Ownership marks: links named cgw*, routes and proxy neighbours with protocol RT_PROTO, and the nft
table `inet cloudgw`. Sysctls are set, never removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

RT_PROTO = 207  # route/neighbour/rule protocol number that marks cloudgw's own entries
MAIN_TABLE = 254
EGRESS_TABLE = 207  # routing table of traffic that leaves to the Internet through another site
RULE_PRIORITY = 20700  # cloudgw's policy rules sit at 20700 and up, before the main table (32766)
NFT_TABLE = "cloudgw"
NFT_FAMILY = "inet"


class Secret(str):
    """A string that never shows itself in repr, logs or plan dumps."""

    def __repr__(self) -> str:
        return "Secret(<redacted>)"


@dataclass(frozen=True)
class TunnelLink:
    name: str
    mtu: int
    up: bool = True


@dataclass(frozen=True)
class WgDevice:
    link: str
    listen_port: int
    private_key: Secret = field(repr=False)


@dataclass(frozen=True)
class WgPeer:
    link: str
    public_key: str
    endpoint: str | None  # "ip:port" after name resolution; None = learn it from the peer
    allowed_ips: tuple[IPv4Network, ...]  # sorted and collapsed
    keepalive: int


@dataclass(frozen=True)
class Route:
    dst: IPv4Network
    dev: str
    src: IPv4Address | None = None  # preferred source, so the gateway's own packets use its LAN address
    table: int = MAIN_TABLE
    mtu: int | None = None  # the path's tunnel MTU when lower than the device's (per peer: see pathmtu.py)
    via: IPv4Address | None = None  # a next hop on the LAN (a router in front of a site's routed prefix)

    @property
    def key(self) -> tuple[int, IPv4Network]:
        return (self.table, self.dst)


@dataclass(frozen=True, order=True)
class PolicyRule:
    """An `ip rule`: with suppress_prefixlength=0 on the main table ("use main, but not its default
    route"), then `from POOL lookup 207`, a site's Internet traffic goes into the tunnel while
    everything more specific still uses the main table."""

    priority: int
    table: int
    src: IPv4Network | None = None
    suppress_prefixlength: int | None = None

    def __str__(self) -> str:
        suppress = "" if self.suppress_prefixlength is None else f" suppress_prefixlength {self.suppress_prefixlength}"
        return f"{self.priority}: from {self.src or 'all'} lookup {self.table}{suppress}"


@dataclass(frozen=True, order=True)
class LanAddress:
    """A virtual address the active gateway of an HA pair holds on its LAN: the VMs' default gateway.
    Marked as cloudgw's by its protocol number (IFA_PROTO), like routes and neighbours."""

    address: IPv4Interface
    dev: str

    def __str__(self) -> str:
        return f"{self.address} {self.dev}"


@dataclass(frozen=True, order=True)
class ProxyNeighbour:
    ip: IPv4Address
    dev: str

    def __str__(self) -> str:
        return f"{self.ip} {self.dev}"


@dataclass(frozen=True)
class VxlanLink:
    """The L2 backend's VXLAN device of one network, a port of the LAN bridge. Its packets go to the
    peers' LAN addresses, which are routed into the WireGuard tunnel: VXLAN inside WireGuard."""

    name: str
    vni: int
    local: IPv4Address  # this gateway's LAN address in the network: the VXLAN endpoint
    bridge: str  # the LAN bridge it is a port of
    mtu: int  # the tunnel's MTU minus VXLAN's 50 bytes
    flood: bool  # the bridge floods broadcast, multicast and unknown unicast to it
    port: int = 4789
    settled: bool = True  # observed: its port flags are cloudgw's (no learning, ARP suppressed)


@dataclass(frozen=True, order=True)
class FdbEntry:
    """A forwarding entry. dst set: the VXLAN device's own (a MAC lives behind that endpoint; the MAC
    00:00:00:00:00:00 lists where broadcast goes). dst None: the bridge's static, sticky entry that
    sends the MAC to the VXLAN port (and lets the bridge answer ARP for it: neighbour suppression)."""

    dev: str
    mac: str
    dst: IPv4Address | None = None

    def __str__(self) -> str:
        return f"{self.mac} {self.dev}" + (f" dst {self.dst}" if self.dst else " master")


@dataclass(frozen=True, order=True)
class BridgeArp:
    """A permanent neighbour entry on the LAN bridge for a remote VM: the bridge answers ARP for it
    locally, so no ARP crosses the WAN. Marked with cloudgw's protocol number."""

    ip: IPv4Address
    mac: str
    dev: str

    def __str__(self) -> str:
        return f"{self.ip} {self.mac} {self.dev}"


@dataclass(frozen=True)
class NftRuleset:
    """The whole `inet cloudgw` table. `commands` is the nft JSON batch that builds it from nothing;
    `fingerprint` identifies it and is stored in the table itself, so observing it is cheap."""

    fingerprint: str
    rule_ids: tuple[tuple[str, str], ...]  # (chain, rule comment), in order: detects hand edits
    commands: tuple[Any, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class KernelState:
    links: dict[str, TunnelLink] = field(default_factory=dict)
    devices: dict[str, WgDevice] = field(default_factory=dict)  # by link name
    peers: dict[tuple[str, str], WgPeer] = field(default_factory=dict)  # by (link, public key)
    sysctls: dict[str, str] = field(default_factory=dict)
    neighbours: frozenset[ProxyNeighbour] = frozenset()
    addresses: frozenset[LanAddress] = frozenset()
    routes: dict[tuple[int, IPv4Network], Route] = field(default_factory=dict)  # by (table, dst)
    rules: frozenset[PolicyRule] = frozenset()
    nft: NftRuleset | None = None
    vxlans: dict[str, VxlanLink] = field(default_factory=dict)  # the L2 backend's, by name
    fdb: frozenset[FdbEntry] = frozenset()
    arp: frozenset[BridgeArp] = frozenset()

    def counts(self) -> dict[str, int]:
        return {
            "links": len(self.links),
            "peers": len(self.peers),
            "neighbours": len(self.neighbours),
            "routes": len(self.routes),
            "rules": len(self.rules),
            "vxlans": len(self.vxlans),
            "fdb": len(self.fdb),
            "arp": len(self.arp),
        }
