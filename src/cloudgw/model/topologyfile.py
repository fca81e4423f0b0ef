"""The declarative topology: a file an admin keeps under version control, `cloudgw apply -f` makes
the controller match it, `cloudgw export` writes the live state back in the same shape (pure).

    version: 1
    sites:       [{name: private, provider: openstack}, {name: public, provider: aws}]
    networks:    [{name: lab, cidr: 192.168.1.0/24}]
    pools:       [{network: lab, site: private, range: 192.168.1.1-192.168.1.10}, ...]
    gateways:    [{name: private-gw, site: private, endpoint: 203.0.113.10:51820, ...}]
    connections: [{network: lab, site_a: private, site_b: public}]

The item models here are also the API's Base schemas, so the file and the API cannot drift apart.
A pool or connection without a name gets the same default the API gives it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cloudgw.errors import InvalidInput, Problem
from cloudgw.model import rules
from cloudgw.model.addr import usable_endpoint
from cloudgw.model.burst import BurstSpec
from cloudgw.model.cloud import AwsCloud, OpenStackCloud, cloud_block, cloud_problems, to_items
from cloudgw.model.defaults import KEEPALIVE, LISTEN_PORT, TUNNEL_MTU
from cloudgw.model.fields import Cidr, HostPort, IfName, IPv4, KeyField, Name, Port, RangeField, Text
from cloudgw.model.spans import PoolSpans
from cloudgw.model.textio import line_of, parse_yaml, pydantic_problems
from cloudgw.model.topology import (
    HA_DEAD_MS,
    HA_INTERVAL_MS,
    Connection,
    Egress,
    Forward,
    Gateway,
    HaTiming,
    Network,
    Pool,
    Site,
    Topology,
)

KINDS = ("sites", "networks", "pools", "gateways", "connections", "egress", "forwards", "bursts")  # dependency order


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HaSpec(Spec):
    """How the gateways of a site's HA pair watch each other (docs/ha.md)."""

    interval_ms: int = Field(HA_INTERVAL_MS, ge=50, le=5000)  # hello period on the LAN and the WAN
    dead_ms: int = Field(HA_DEAD_MS, ge=150, le=60_000)  # unheard this long: presumed dead
    failback: bool = False  # a recovered gateway of higher priority takes the active role back
    # the site's virtual LAN addresses (the VMs' default gateway): held by whichever gateway is active
    addresses: list[IPv4] = Field([], max_length=8)

    @model_validator(mode="after")
    def _dead_after_three_hellos(self) -> HaSpec:
        if self.dead_ms < 3 * self.interval_ms:
            raise ValueError(
                f"dead_ms {self.dead_ms} is less than three hellos ({3 * self.interval_ms} ms): one lost hello "
                "would fail over; raise dead_ms or lower interval_ms"
            )
        return self

    def timing(self) -> HaTiming:
        return HaTiming(self.interval_ms, self.dead_ms, self.failback, tuple(self.addresses))


class SiteSpec(Spec):
    name: Name
    provider: Literal["generic", "lab", "aws", "openstack"] = "generic"  # decides the reserved addresses
    description: Text = ""
    # where the site's cloud side is, so its provider drives it (docs/providers.md); none: cloudgw
    # changes nothing in the cloud (the manual way, docs/deploy.md)
    aws: AwsCloud | None = None
    openstack: OpenStackCloud | None = None
    ha: HaSpec | None = None  # timing of the site's gateway pair (default: 200 ms hellos, dead after 1 s)
    # external: no cloudgw agent, a stock WireGuard router (`cloudgw site export-config`)
    kind: Literal["cloudgw", "external"] = "cloudgw"
    routed: list[Cidr] = Field([], max_length=64)  # plain routed prefixes behind the site (its router)
    routed_via: IPv4 | None = None  # a cloudgw site's routed prefixes: the router on its LAN that has them

    @model_validator(mode="after")
    def _cloud_matches_provider(self) -> SiteSpec:
        problems = cloud_problems(self.provider, self.aws, self.openstack)
        if problems:
            raise ValueError(f"{problems[0].message}: {problems[0].fix}")
        return self

    @property
    def cloud(self) -> tuple[tuple[str, str], ...]:
        return to_items(self.aws or self.openstack)


class NetworkSpec(Spec):
    name: Name
    cidr: Cidr
    mode: Literal["l3", "l2"] = "l3"
    description: Text = ""
    flood: bool = False  # L2 only: broadcast crosses sites


class PoolSpec(Spec):
    name: Name | None = None  # default: <site>-<network>
    network: Name
    site: Name
    range: RangeField

    @property
    def key(self) -> str:
        return self.name or f"{self.site}-{self.network}"

    @model_validator(mode="after")
    def _default_name_fits(self) -> PoolSpec:
        _check_default_name(self.name, self.key, "pool")
        return self


def _check_default_name(name: str | None, key: str, what: str) -> None:
    if name is None and len(key) > 63:
        raise ValueError(
            f"the default {what} name '{key[:40]}...' is longer than 63 characters; give the {what} a name"
        )


class GatewaySpec(Spec):
    name: Name
    site: Name
    endpoint: HostPort | None = None  # public HOST:PORT (floating / Elastic IP and the listen port)
    wan_interface: IfName = "eth0"
    lan_interface: IfName = "eth1"
    lan_addresses: list[IPv4] = Field([], max_length=16)
    listen_port: Port = LISTEN_PORT
    priority: int = Field(100, ge=1, le=255)  # of a site's pair, the higher is preferred as the active one
    # an external site's router: its WireGuard public key, given by the admin (generated there)
    public_key: KeyField | None = None


class ConnectionSpec(Spec):
    name: Name | None = None  # default: <site_a>-<site_b>-<network>
    network: Name
    site_a: Name
    site_b: Name
    enabled: bool = True
    mtu: int = Field(TUNNEL_MTU, ge=0, le=65535)  # the tunnel's upper limit (rules give the real range: 1280-9000)
    keepalive: int = Field(KEEPALIVE, ge=0, le=86400)  # seconds; keeps NAT mappings open
    transport: Literal["wireguard"] = "wireguard"

    @property
    def key(self) -> str:
        return self.name or f"{self.site_a}-{self.site_b}-{self.network}"

    @model_validator(mode="after")
    def _default_name_fits(self) -> ConnectionSpec:
        _check_default_name(self.name, self.key, "connection")
        return self


class EgressSpec(Spec):
    site: Name
    network: Name
    mode: Literal["local", "via", "none"] = "local"
    via: Name | None = None  # the site whose gateway the traffic leaves through, with mode via

    @property
    def key(self) -> str:
        return f"{self.site}-{self.network}"


class PortForwardSpec(Spec):
    name: Name
    gateway: Name
    protocol: Literal["tcp", "udp"] = "tcp"
    public_port: int = Field(ge=1, le=65535)
    target_ip: IPv4
    target_port: int = Field(ge=1, le=65535)


class TopologyFile(Spec):
    version: Literal[1] = 1
    sites: list[SiteSpec] = []
    networks: list[NetworkSpec] = []
    pools: list[PoolSpec] = []
    gateways: list[GatewaySpec] = []
    connections: list[ConnectionSpec] = []
    egress: list[EgressSpec] = []  # sites that do not leave to the Internet locally
    forwards: list[PortForwardSpec] = []
    bursts: list[BurstSpec] = []  # burst policies (model.burst)


def site_ha(site: SiteSpec) -> HaTiming:
    return site.ha.timing() if site.ha is not None else HaTiming()


def item_key(item: Spec) -> str:
    key = getattr(item, "key", None)
    return str(key if key is not None else item.name)  # type: ignore[attr-defined]


# conversions ------------------------------------------------------------------------------------
def to_topology(spec: TopologyFile) -> Topology:
    topo = Topology()
    for site in spec.sites:
        topo.sites[site.name] = Site(
            site.name,
            site.provider,
            site.description,
            site.cloud,
            site_ha(site),
            site.kind,
            tuple(site.routed),
            site.routed_via,
        )
    for net in spec.networks:
        topo.networks[net.name] = Network(net.name, net.cidr, net.mode, net.description, net.flood)
    for pool in spec.pools:
        topo.pools[pool.key] = Pool(pool.key, pool.network, pool.site, pool.range)
    for gw in spec.gateways:
        topo.gateways[gw.name] = Gateway(
            gw.name,
            gw.site,
            gw.endpoint,
            gw.public_key,
            gw.wan_interface,
            gw.lan_interface,
            tuple(gw.lan_addresses),
            gw.listen_port,
            gw.priority,
        )
    for conn in spec.connections:
        topo.connections[conn.key] = Connection(
            conn.key, conn.network, conn.site_a, conn.site_b, conn.enabled, conn.mtu, conn.keepalive
        )
    for egress in spec.egress:
        topo.egress[egress.key] = Egress(egress.key, egress.site, egress.network, egress.mode, egress.via)
    for fwd in spec.forwards:
        topo.forwards[fwd.name] = Forward(
            fwd.name, fwd.gateway, fwd.protocol, fwd.public_port, fwd.target_ip, fwd.target_port
        )
    for burst in spec.bursts:
        topo.bursts[burst.name] = burst
    return topo


def from_topology(topo: Topology) -> TopologyFile:
    """The live topology as a file: names that equal their default are left out, so a file written
    by hand and its export look alike."""
    pools = []
    for pool in sorted(topo.pools.values(), key=lambda p: p.name):
        name = None if pool.name == f"{pool.site}-{pool.network}" else pool.name
        pools.append(PoolSpec(name=name, network=pool.network, site=pool.site, range=pool.range))
    connections = []
    for conn in sorted(topo.connections.values(), key=lambda c: c.name):
        name = None if conn.name == f"{conn.site_a}-{conn.site_b}-{conn.network}" else conn.name
        connections.append(
            ConnectionSpec(
                name=name,
                network=conn.network,
                site_a=conn.site_a,
                site_b=conn.site_b,
                enabled=conn.enabled,
                mtu=conn.mtu,
                keepalive=conn.keepalive,
            )
        )
    return TopologyFile(
        sites=[
            SiteSpec(
                name=s.name,
                provider=s.provider,
                description=s.description,
                **cloud_block(s.provider, s.cloud),
                **({"ha": HaSpec(**{**vars(s.ha), "addresses": list(s.ha.addresses)})} if s.ha != HaTiming() else {}),
                **({"kind": s.kind} if s.external else {}),
                **({"routed": list(s.routed)} if s.routed else {}),
                **({"routed_via": s.routed_via} if s.routed_via else {}),
            )
            for s in sorted(topo.sites.values(), key=lambda s: s.name)
        ],
        networks=[
            NetworkSpec(name=n.name, cidr=n.cidr, mode=n.mode, description=n.description, flood=n.flood)
            for n in sorted(topo.networks.values(), key=lambda n: n.name)
        ],
        pools=pools,
        gateways=[
            GatewaySpec(
                name=g.name,
                site=g.site,
                endpoint=usable_endpoint(g.endpoint),
                wan_interface=g.wan_interface,
                lan_interface=g.lan_interface,
                lan_addresses=list(g.lan_addresses),
                listen_port=g.listen_port,
                priority=g.priority,
                public_key=g.public_key if g.site in topo.sites and topo.sites[g.site].external else None,
            )
            for g in sorted(topo.gateways.values(), key=lambda g: g.name)
        ],
        connections=connections,
        egress=[
            EgressSpec(site=e.site, network=e.network, mode=e.mode, via=e.via)
            for e in sorted(topo.egress.values(), key=lambda e: e.name)
        ],
        forwards=[
            PortForwardSpec(
                name=f.name,
                gateway=f.gateway,
                protocol=f.protocol,
                public_port=f.public_port,
                target_ip=f.target_ip,
                target_port=f.target_port,
            )
            for f in sorted(topo.forwards.values(), key=lambda f: f.name)
        ],
        bursts=sorted(topo.bursts.values(), key=lambda b: b.name),
    )


def dump_file(spec: TopologyFile) -> dict[str, Any]:
    """Plain data for YAML/JSON, defaults left out for readability."""
    data: dict[str, Any] = {"version": 1}
    for kind in KINDS:
        items = [item.model_dump(mode="json", exclude_defaults=True) for item in getattr(spec, kind)]
        if items or kind not in ("egress", "forwards", "bursts"):  # the optional sections only when used
            data[kind] = items
    return data


# validation -------------------------------------------------------------------------------------
def check_file(spec: TopologyFile) -> list[Problem]:
    """Everything the controller would refuse, found before any change: the file is built up item by
    item in dependency order and each item is checked by the same rules the API applies."""
    problems: list[Problem] = []
    built = Topology()
    spans = PoolSpans()  # built's pools, indexed: checking 10,000 pools compares each with its neighbours
    checks = {
        "sites": lambda item: rules.check_site(
            built,
            Site(
                item.name,
                item.provider,
                item.description,
                item.cloud,
                site_ha(item),
                item.kind,
                tuple(item.routed),
                item.routed_via,
            ),
        ),
        "networks": lambda item: rules.check_network(
            built, Network(item.name, item.cidr, item.mode, item.description, item.flood)
        ),
        "pools": lambda item: rules.check_pool(built, Pool(item.key, item.network, item.site, item.range), spans=spans),
        "gateways": lambda item: (
            rules.check_gateway_key(
                built,
                Gateway(item.name, item.site, public_key=item.public_key),
                None,
            )
            + rules.check_gateway(
                built,
                Gateway(
                    item.name,
                    item.site,
                    item.endpoint,
                    item.public_key,
                    item.wan_interface,
                    item.lan_interface,
                    tuple(item.lan_addresses),
                    item.listen_port,
                    item.priority,
                ),
            )
        ),
        "connections": lambda item: rules.check_connection(
            built, Connection(item.key, item.network, item.site_a, item.site_b, item.enabled, item.mtu, item.keepalive)
        ),
        "egress": lambda item: rules.check_egress(
            built, Egress(item.key, item.site, item.network, item.mode, item.via)
        ),
        "forwards": lambda item: rules.check_forward(
            built, Forward(item.name, item.gateway, item.protocol, item.public_port, item.target_ip, item.target_port)
        ),
        "bursts": lambda item: (
            (
                [Problem("name", f"burst policy '{item.name}' is named twice", "give each policy its own name")]
                if item.name in built.bursts
                else []
            )
            + rules.check_burst(built, item)
        ),
    }
    full = to_topology(spec)
    for kind in KINDS:
        for index, item in enumerate(getattr(spec, kind)):
            for problem in checks[kind](item):
                problems.append(
                    Problem(f"{kind}[{index}].{problem.field}", problem.message, problem.fix, problem.conflict)
                )
            key = item_key(item)
            getattr(built, kind)[key] = getattr(full, kind)[key]
            if kind == "pools":
                spans.add(built.pools[key])  # a key named twice: the counts differ, check_pool scans
    return problems


def parse_file(text: str, source: str = "topology") -> TopologyFile:
    """Parse and validate a topology file; every problem names its field and, where known, its line."""
    data = parse_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput(
            [Problem(f"{source} line 1", "expected a mapping with sites, networks, pools, gateways and connections")],
            what=source,
        )
    try:
        spec = TopologyFile.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(_with_lines(text, pydantic_problems(exc)), what=source) from None
    problems = check_file(spec)
    if problems:
        raise InvalidInput(_with_lines(text, problems), what=source)
    return spec


def _with_lines(text: str, problems: list[Problem]) -> list[Problem]:
    located = []
    for problem in problems:
        line = line_of(text, problem.field)
        field_name = f"{problem.field} (line {line})" if line else problem.field
        located.append(Problem(field_name, problem.message, problem.fix, problem.conflict))
    return located


# planning ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    op: Literal["create", "update", "delete"]
    kind: str  # sites, networks, pools, gateways, connections
    name: str
    body: dict[str, Any] = field(default_factory=dict)  # create: the item; update: the changed fields
    before: dict[str, Any] = field(default_factory=dict)  # update/delete: the live values shown in the plan

    def describe(self) -> str:
        if self.op == "update":
            changes = ", ".join(f"{k}: {self.before.get(k)!r} -> {v!r}" for k, v in self.body.items())
            return f"~ update {self.kind[:-1]} {self.name}: {changes}"
        return f"{'+' if self.op == 'create' else '-'} {self.op} {self.kind[:-1]} {self.name}"


# Fields that cannot change in place: a different value means delete and create.
IDENTITY = {
    "pools": ("network", "site"),
    "connections": ("network", "site_a", "site_b"),
    "egress": ("site", "network"),
    "forwards": ("gateway",),
}


def plan(desired: TopologyFile, live: TopologyFile) -> list[Step]:
    """Steps that make `live` equal `desired`: deletes first (reverse dependency order), then updates
    (pools that shrink before pools that grow), then creates (dependency order)."""
    deletes: list[Step] = []
    updates: list[Step] = []
    creates: list[Step] = []
    for kind in KINDS:
        want = {item_key(i): i for i in getattr(desired, kind)}
        have = {item_key(i): i for i in getattr(live, kind)}
        for name, item in have.items():
            if name not in want or any(getattr(item, f) != getattr(want[name], f) for f in IDENTITY.get(kind, ())):
                deletes.append(Step("delete", kind, name, before=item.model_dump(mode="json")))
        for name, item in want.items():
            body = item.model_dump(mode="json")
            if kind in ("pools", "connections"):
                body["name"] = name
            current = have.get(name)
            if current is None or any(getattr(current, f) != getattr(item, f) for f in IDENTITY.get(kind, ())):
                creates.append(Step("create", kind, name, body))
                continue
            old = current.model_dump(mode="json")
            changed = {k: v for k, v in item.model_dump(mode="json").items() if k != "name" and old.get(k) != v}
            if changed:
                updates.append(Step("update", kind, name, changed, {k: old.get(k) for k in changed}))
    order = {kind: index for index, kind in enumerate(KINDS)}
    deletes.sort(key=lambda s: -order[s.kind])
    updates.sort(key=lambda s: (order[s.kind], _growth(s)))
    creates.sort(key=lambda s: order[s.kind])
    return deletes + updates + creates


def _growth(step: Step) -> int:
    if step.kind != "pools" or "range" not in step.body:
        return 0
    from cloudgw.model.addr import AddressRange

    return AddressRange.parse(step.body["range"]).size - AddressRange.parse(step.before["range"]).size


__all__ = ["KINDS", "IPv4Address", "Step", "TopologyFile", "check_file", "from_topology", "parse_file", "plan"]
