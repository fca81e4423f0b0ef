"""The admin's topology as plain values (pure): sites, gateways, networks, pools, connections, and the
endpoints gateways announce. The controller loads it from its database; validation, the mapping
service and document rendering all work on this snapshot, so they are testable without a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Literal

from cloudgw.model.addr import AddressRange
from cloudgw.model.defaults import LISTEN_PORT, TUNNEL_MTU

if TYPE_CHECKING:
    from cloudgw.model.burst import BurstSpec

Provider = Literal["generic", "lab", "aws", "openstack"]
PROVIDERS: tuple[str, ...] = ("generic", "lab", "aws", "openstack")


HA_INTERVAL_MS = 200  # a gateway of a pair tells its partner it lives this often (LAN and WAN)
HA_DEAD_MS = 1000  # a partner unheard this long is presumed dead


@dataclass(frozen=True)
class HaTiming:
    """How the gateways of one site watch each other (docs/ha.md)."""

    interval_ms: int = HA_INTERVAL_MS
    dead_ms: int = HA_DEAD_MS
    failback: bool = False  # a recovered gateway of higher priority takes the active role back
    addresses: tuple[IPv4Address, ...] = ()  # virtual LAN addresses the active gateway holds (default gateway)


@dataclass(frozen=True)
class Site:
    name: str
    provider: str = "generic"  # decides which addresses of a subnet the cloud reserves
    description: str = ""
    cloud: tuple[tuple[str, str], ...] = ()  # its cloud identity (model.cloud); () = cloudgw leaves the cloud alone
    ha: HaTiming = HaTiming()
    # external: no cloudgw agent there, a stock WireGuard router (`cloudgw site export-config`); its
    # addresses are declared (its pools, all of them in use), never learned
    kind: str = "cloudgw"
    routed: tuple[IPv4Network, ...] = ()  # plain routed prefixes behind its gateway (a branch's 10.50.0.0/16)
    routed_via: IPv4Address | None = None  # a cloudgw site's: the router on its LAN in front of them

    @property
    def external(self) -> bool:
        return self.kind == "external"


@dataclass(frozen=True)
class Gateway:
    name: str
    site: str
    endpoint: str | None = None  # public HOST:PORT peers send to (floating / Elastic IP)
    public_key: str | None = None  # set when the gateway joins; None = not joined yet
    wan_interface: str = "eth0"
    lan_interface: str = "eth1"
    lan_addresses: tuple[IPv4Address, ...] = ()  # its own LAN address in each network it serves
    listen_port: int = LISTEN_PORT
    priority: int = 100  # of two gateways of a site, the higher is preferred as the active one
    # the active/standby role, as the gateways' agents last agreed with the controller (None: never
    # reported; a site with one gateway has no roles) and the epoch of that agreement
    role: str | None = None
    role_epoch: int = 0


@dataclass(frozen=True)
class Network:
    name: str
    cidr: IPv4Network
    mode: str = "l3"
    description: str = ""
    # L2 only: broadcast, multicast and unknown unicast cross sites (head-end replication); off,
    # nothing but frames to known MACs leaves a site, and ARP is answered locally
    flood: bool = False


@dataclass(frozen=True)
class Pool:
    name: str
    network: str
    site: str
    range: AddressRange


@dataclass(frozen=True)
class Connection:
    name: str
    network: str
    site_a: str
    site_b: str
    enabled: bool = True
    mtu: int = TUNNEL_MTU
    keepalive: int = 25

    def joins(self, site: str) -> bool:
        return site in (self.site_a, self.site_b)

    def other(self, site: str) -> str:
        return self.site_b if site == self.site_a else self.site_a


@dataclass(frozen=True)
class Egress:
    """Where a site's Internet traffic in one network leaves: at its own gateway (local, the default
    when there is no Egress), through another site's gateway (via), or not at all (none)."""

    name: str  # <site>-<network>
    site: str
    network: str
    mode: str = "local"
    via: str | None = None  # a site, when mode is "via"


@dataclass(frozen=True)
class Forward:
    """A port on a gateway's public address forwarded to a VM of its site."""

    name: str
    gateway: str
    protocol: str  # tcp or udp
    public_port: int
    target_ip: IPv4Address
    target_port: int


@dataclass(frozen=True)
class Announcement:
    """One gateway saying "I see this address on my LAN"."""

    network: str
    ip: IPv4Address
    gateway: str
    mac: str | None = None
    first_seen: float = 0.0
    last_seen: float = 0.0


AnnouncementKey = tuple[str, IPv4Address, str]  # (network, ip, gateway)
Group = dict[IPv4Address, Announcement]  # what one gateway announces in one network


class Announcements(Mapping[AnnouncementKey, Announcement]):
    """Every announcement, keyed (network, ip, gateway), held as one group per (network, gateway),
    read-only. Replacing one gateway's announcements (`with_group`) copies the table of groups, not
    every announcement: at 100,000 endpoints the copy of one flat dict was most of an announcement's
    write. Groups given to it are never changed afterwards (each write makes new ones)."""

    __slots__ = ("_groups", "_size")

    def __init__(self, groups: dict[tuple[str, str], Group] | None = None) -> None:
        self._groups = {key: group for key, group in (groups or {}).items() if group}
        self._size = sum(len(group) for group in self._groups.values())

    @classmethod
    def of(cls, flat: Mapping[AnnouncementKey, Announcement]) -> Announcements:
        if isinstance(flat, Announcements):
            return flat
        groups: dict[tuple[str, str], Group] = {}
        for (network, ip, gateway), announcement in flat.items():
            groups.setdefault((network, gateway), {})[ip] = announcement
        return cls(groups)

    def __getitem__(self, key: AnnouncementKey) -> Announcement:
        network, ip, gateway = key
        return self._groups[(network, gateway)][ip]

    def __iter__(self) -> Iterator[AnnouncementKey]:
        for (network, gateway), group in self._groups.items():
            for ip in group:
                yield network, ip, gateway

    def __len__(self) -> int:
        return self._size

    def group(self, network: str, gateway: str) -> Mapping[IPv4Address, Announcement]:
        return self._groups.get((network, gateway), {})

    def with_group(self, network: str, gateway: str, group: Group) -> Announcements:
        """A copy in which this gateway announces exactly `group` in this network."""
        groups = dict(self._groups)
        if group:
            groups[(network, gateway)] = group
        else:
            groups.pop((network, gateway), None)
        copy = Announcements.__new__(Announcements)
        copy._groups = groups
        copy._size = self._size - len(self._groups.get((network, gateway), ())) + len(group)
        return copy


@dataclass(frozen=True)
class CloudInventory:
    """The VMs a site's cloud lists on its subnet in one network (written by the provider
    reconciler): `gateway`, the site's cloud gateway, announces them beside what it learns."""

    name: str  # <site>/<network>
    site: str
    network: str
    gateway: str | None
    endpoints: tuple[tuple[IPv4Address, str | None], ...] = ()  # (ip, mac), sorted


@dataclass
class Topology:
    sites: dict[str, Site] = field(default_factory=dict)
    gateways: dict[str, Gateway] = field(default_factory=dict)
    networks: dict[str, Network] = field(default_factory=dict)
    pools: dict[str, Pool] = field(default_factory=dict)
    connections: dict[str, Connection] = field(default_factory=dict)
    egress: dict[str, Egress] = field(default_factory=dict)
    forwards: dict[str, Forward] = field(default_factory=dict)
    announcements: Mapping[AnnouncementKey, Announcement] = field(default_factory=dict)
    bursts: dict[str, BurstSpec] = field(default_factory=dict)  # burst policies (model.burst), by name
    inventory: dict[str, CloudInventory] = field(default_factory=dict)
    revision: int = 0

    # lookups ----------------------------------------------------------------------------------
    def gateways_of(self, site: str) -> list[Gateway]:
        return [g for g in self.gateways.values() if g.site == site]

    def active_gateway(self, site: str) -> Gateway | None:
        """The gateway that carries the site's traffic: its only one, or of a pair the one whose
        role is active (else the joined one of highest priority, then name, until roles are known)."""
        return choose_active(self.gateways_of(site))

    def pools_in(self, network: str, site: str | None = None) -> list[Pool]:
        return [p for p in self.pools.values() if p.network == network and (site is None or p.site == site)]

    def connections_of(self, site: str, network: str | None = None, enabled_only: bool = True) -> list[Connection]:
        return [
            c
            for c in self.connections.values()
            if c.joins(site) and (network is None or c.network == network) and (c.enabled or not enabled_only)
        ]

    def connected_sites(self, site: str, network: str | None = None) -> set[str]:
        return {c.other(site) for c in self.connections_of(site, network)}

    def owner_pool(self, network: str, ip: IPv4Address) -> Pool | None:
        for pool in self.pools_in(network):
            if ip in pool.range:
                return pool
        return None

    def announcements_of(self, network: str, ip: IPv4Address) -> list[Announcement]:
        return [a for (n, i, _), a in self.announcements.items() if n == network and i == ip]

    def egress_of(self, site: str, network: str) -> Egress:
        found = self.egress.get(f"{site}-{network}")
        return found if found is not None else Egress(f"{site}-{network}", site, network)

    def gateways_for_sites(self, sites: Iterable[str]) -> set[str]:
        wanted = set(sites)
        return {g.name for g in self.gateways.values() if g.site in wanted}


def choose_active(members: list[Gateway]) -> Gateway | None:
    """Of one site's gateways: the active one (see Topology.active_gateway)."""
    if len(members) <= 1:
        return members[0] if members else None
    active = [g for g in members if g.role == "active"]
    if active:
        return max(active, key=lambda g: g.role_epoch)
    joined = [g for g in members if g.public_key] or members
    return max(joined, key=lambda g: (g.priority, g.name))


def ha_from_json(data: dict[str, object] | None) -> HaTiming:
    """A site's stored HA timing (written by the controller from a checked HaSpec); None: defaults."""
    if not data:
        return HaTiming()
    listed = data.get("addresses")
    return HaTiming(
        int(str(data.get("interval_ms", HA_INTERVAL_MS))),
        int(str(data.get("dead_ms", HA_DEAD_MS))),
        bool(data.get("failback", False)),
        tuple(IPv4Address(str(a)) for a in listed) if isinstance(listed, list) else (),
    )


def ha_to_json(ha: HaTiming) -> dict[str, object] | None:
    if ha == HaTiming():
        return None
    data: dict[str, object] = {"interval_ms": ha.interval_ms, "dead_ms": ha.dead_ms, "failback": ha.failback}
    if ha.addresses:
        data["addresses"] = [str(a) for a in ha.addresses]
    return data
