"""Validation of a proposed change to the topology (pure). Each function returns the Problems that
refuse it; an empty list means the change may be written. The controller calls these inside its one
mutation path, before anything is written, so a refusal changes nothing."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from pydantic import ValidationError

from cloudgw.errors import Problem
from cloudgw.model.addr import parse_host_port
from cloudgw.model.burst import SIGNAL_NEEDS, BurstSpec
from cloudgw.model.cloud import CLOUD_KINDS, parse_items
from cloudgw.model.keys import check_key
from cloudgw.model.spans import PoolSpans
from cloudgw.model.topology import PROVIDERS, Connection, Egress, Forward, Gateway, Network, Pool, Site, Topology

MTU_RANGE = (1280, 9000)


def reserved_addresses(provider: str, cidr: IPv4Network) -> dict[IPv4Address, str]:
    """Addresses of a subnet that the site's cloud keeps for itself; no VM can have them."""
    reserved = {cidr.network_address: "the network address", cidr.broadcast_address: "the broadcast address"}
    if provider == "aws" and cidr.prefixlen <= 28:
        base = int(cidr.network_address)
        reserved[IPv4Address(base + 1)] = "reserved by AWS for the VPC router"
        reserved[IPv4Address(base + 2)] = "reserved by AWS for DNS"
        reserved[IPv4Address(base + 3)] = "reserved by AWS for future use"
        reserved[cidr.broadcast_address] = "reserved by AWS (the last address of every subnet)"
    return reserved


def check_site(topo: Topology, site: Site, old_name: str | None = None) -> list[Problem]:
    problems = []
    if site.name != old_name and site.name in topo.sites:
        problems.append(Problem("name", f"site '{site.name}' already exists", "choose another name", conflict=True))
    if site.provider not in PROVIDERS:
        problems.append(
            Problem("provider", f"unknown provider '{site.provider}'", f"use one of: {', '.join(PROVIDERS)}")
        )
    if site.cloud:
        problems.extend(_cloud_identity_problems(site))
    problems.extend(_external_problems(topo, site, old_name))
    for v, virtual in enumerate(site.ha.addresses):
        pool = next((p for p in topo.pools.values() if virtual in p.range), None)
        if pool is not None:
            problems.append(
                Problem(
                    f"ha.addresses[{v}]",
                    f"{virtual} is in pool '{pool.name}': an address VMs may take",
                    "use an address outside every pool (such as the one the VMs use as their default gateway)",
                )
            )
        taken = next((g for g in topo.gateways.values() if virtual in g.lan_addresses), None)
        if taken is not None:
            problems.append(
                Problem(
                    f"ha.addresses[{v}]",
                    f"{virtual} is gateway '{taken.name}''s own LAN address",
                    "a virtual address moves between the pair: give it one no gateway has",
                )
            )
    if old_name is not None and site.provider != topo.sites[old_name].provider:
        for pool in topo.pools.values():
            if pool.site == old_name:
                problems.extend(_reserved_problems(site.provider, topo.networks[pool.network].cidr, pool, "provider"))
    return problems


def _external_problems(topo: Topology, site: Site, old_name: str | None) -> list[Problem]:
    """An external site (a stock WireGuard router, no agent) and its routed prefixes."""
    problems = []
    if site.kind not in ("cloudgw", "external"):
        problems.append(Problem("kind", f"unknown kind '{site.kind}'", "use cloudgw (the default) or external"))
    if site.routed and not site.external and site.routed_via is None:
        problems.append(
            Problem(
                "routed_via",
                "a cloudgw site's routed prefixes are behind a router on its LAN: which one?",
                "give routed_via (that router's address in the site's network), or make the site external",
            )
        )
    if site.routed_via is not None and (site.external or not site.routed):
        problems.append(
            Problem(
                "routed_via",
                "only a cloudgw site with routed prefixes has a router on its LAN for them",
                "leave routed_via out" if site.external else "give routed prefixes too, or leave routed_via out",
            )
        )
    if site.routed_via is not None:
        pool = next((p for p in topo.pools.values() if site.routed_via in p.range), None)
        if pool is not None:
            problems.append(
                Problem("routed_via", f"{site.routed_via} is in pool '{pool.name}'", "a router's address is no VM's")
            )
    if site.external and site.cloud:
        problems.append(Problem("kind", "cloudgw drives no cloud for an external site", "remove the cloud block"))
    members = [g for g in topo.gateways.values() if g.site == (old_name or site.name)]
    if site.external and len(members) > 1:
        problems.append(Problem("kind", "an external site has one gateway (its router); this one has more"))
    for r, prefix in enumerate(site.routed):
        network = next((n for n in topo.networks.values() if n.cidr.overlaps(prefix)), None)
        if network is not None:
            problems.append(
                Problem(
                    f"routed[{r}]",
                    f"{prefix} overlaps network '{network.name}' {network.cidr}",
                    "a routed prefix lies outside every stretched network",
                )
            )
        for other in topo.sites.values():
            if other.name in (site.name, old_name):
                continue
            clash = next((q for q in other.routed if q.overlaps(prefix)), None)
            if clash is not None:
                problems.append(
                    Problem(f"routed[{r}]", f"{prefix} overlaps site '{other.name}''s routed {clash}", conflict=True)
                )
        for q in site.routed[:r]:
            if q.overlaps(prefix):
                problems.append(Problem(f"routed[{r}]", f"{prefix} overlaps {q}", "list each prefix once"))
    return problems


def check_gateway_key(topo: Topology, gateway: Gateway, old: Gateway | None) -> list[Problem]:
    """Who may set a gateway's public key: the admin for an external site's router (its key is made
    there); for a cloudgw gateway only its agent, by joining."""
    site = topo.sites.get(gateway.site)
    given = gateway.public_key is not None and (old is None or gateway.public_key != old.public_key)
    if given and (site is None or not site.external):
        return [
            Problem(
                "public_key",
                "a cloudgw gateway's key comes from its agent when it joins",
                "leave public_key out (only an external site's router takes one from the admin)",
            )
        ]
    return []


def _cloud_identity_problems(site: Site) -> list[Problem]:
    if site.provider not in CLOUD_KINDS:
        return [
            Problem(
                "provider",
                f"site '{site.name}' has a cloud identity but its provider '{site.provider}' drives no cloud",
                "use provider aws or openstack, or remove the cloud block",
            )
        ]
    try:
        parse_items(site.provider, site.cloud)
    except ValidationError:
        return [
            Problem(
                "provider",
                f"site '{site.name}' keeps a cloud identity of another provider than '{site.provider}'",
                f"give an '{site.provider}' block in the same change, or set it to null first",
            )
        ]
    return []


def check_network(topo: Topology, network: Network, old_name: str | None = None) -> list[Problem]:
    problems = []
    if network.name != old_name and network.name in topo.networks:
        problems.append(
            Problem("name", f"network '{network.name}' already exists", "choose another name", conflict=True)
        )
    if network.mode not in ("l3", "l2"):
        problems.append(Problem("mode", f"'{network.mode}' is not a network mode", "use l3 or l2"))
    if network.flood and network.mode != "l2":
        problems.append(Problem("flood", "flooding is an L2 setting", "set mode l2, or leave flood off"))
    for site in topo.sites.values():
        routed = next((q for q in site.routed if q.overlaps(network.cidr)), None)
        if routed is not None:
            problems.append(
                Problem("cidr", f"{network.cidr} overlaps {routed}, routed behind site '{site.name}'", conflict=True)
            )
    if network.cidr.prefixlen > 30:
        problems.append(Problem("cidr", f"{network.cidr} is too small to stretch", "use a /30 or larger"))
    if old_name is not None:
        for pool in topo.pools_in(old_name):
            if not pool.range.within(network.cidr):
                problems.append(
                    Problem(
                        "cidr",
                        f"pool '{pool.name}' ({pool.range}) would fall outside {network.cidr}",
                        "change or delete that pool first",
                    )
                )
    return problems


def _reserved_problems(provider: str, cidr: IPv4Network, pool: Pool, field: str) -> list[Problem]:
    problems = []
    for address, why in sorted(reserved_addresses(provider, cidr).items()):
        if address in pool.range:
            problems.append(
                Problem(
                    field,
                    f"{pool.range} holds {address}, {why} in {cidr} (site '{pool.site}' is {provider})",
                    "start the pool after the reserved addresses and end it before the last one",
                )
            )
    return problems


def check_pool(
    topo: Topology, pool: Pool, old_name: str | None = None, spans: PoolSpans | None = None
) -> list[Problem]:
    """`spans`: the topology's pools indexed (model.spans), when the caller keeps them: the overlap
    check then looks at the neighbours of the range, not at every pool of the network."""
    problems = []
    if pool.name != old_name and pool.name in topo.pools:
        problems.append(Problem("name", f"pool '{pool.name}' already exists", "choose another name", conflict=True))
    network = topo.networks.get(pool.network)
    site = topo.sites.get(pool.site)
    if network is None:
        problems.append(Problem("network", f"unknown network '{pool.network}'", "create the network first"))
    if site is None:
        problems.append(Problem("site", f"unknown site '{pool.site}'", "create the site first"))
    if network is None or site is None:
        return problems
    if site.external and pool.range.size > EXTERNAL_POOL_MAX:
        problems.append(
            Problem(
                "range",
                f"{pool.range} has {pool.range.size} addresses; an external site's pool is declared in full "
                f"(every address in use), at most {EXTERNAL_POOL_MAX}",
                "use a smaller pool, or a routed prefix on the site (routed: [CIDR]) for a whole network",
            )
        )
    for holder in topo.sites.values():
        covered = [a for a in holder.ha.addresses if a in pool.range]
        if covered:
            problems.append(
                Problem(
                    "range",
                    f"{pool.range} covers {covered[0]}, site '{holder.name}''s virtual LAN address (its HA pair's)",
                    "leave the virtual address out of every pool",
                )
            )
    if not pool.range.within(network.cidr):
        problems.append(
            Problem(
                "range",
                f"{pool.range} is outside network '{network.name}' ({network.cidr})",
                f"choose a range inside {network.cidr}",
            )
        )
        return problems
    problems.extend(_reserved_problems(site.provider, network.cidr, pool, "range"))
    first, last = int(pool.range.first), int(pool.range.last)
    if spans is not None and spans.count == len(topo.pools):
        others = spans.overlapping(pool.network, first, last)
    else:  # no index, or one that is not this topology's (its count differs): every pool of the network
        others = topo.pools_in(pool.network)
    for other in others:
        if other.name == (old_name or pool.name):
            continue  # itself (before the update), or a name clash already reported
        if first <= int(other.range.last) and int(other.range.first) <= last:
            owner = "the same site" if other.site == pool.site else f"site '{other.site}'"
            problems.append(
                Problem(
                    "range",
                    f"{pool.range} overlaps pool '{other.name}' {other.range} of {owner}",
                    "an address belongs to one site only; choose a disjoint range",
                    conflict=True,
                )
            )
    for gateway in topo.gateways.values():
        if gateway.site == pool.site:
            continue
        for address in gateway.lan_addresses:
            if address in pool.range:
                problems.append(
                    Problem(
                        "range",
                        f"{pool.range} holds {address}, the LAN address of gateway "
                        f"'{gateway.name}' (site '{gateway.site}')",
                        "leave that address out",
                    )
                )
    return problems


MAX_GATEWAYS_PER_SITE = 4
EXTERNAL_POOL_MAX = 4096  # an external site's pool: every address a remote endpoint of its peers


def check_gateway(topo: Topology, gateway: Gateway, old_name: str | None = None) -> list[Problem]:
    problems = []
    if gateway.name != old_name and gateway.name in topo.gateways:
        problems.append(
            Problem("name", f"gateway '{gateway.name}' already exists", "choose another name", conflict=True)
        )
    if gateway.site not in topo.sites:
        problems.append(Problem("site", f"unknown site '{gateway.site}'", "create the site first"))
    else:
        others = [g for g in topo.gateways_of(gateway.site) if g.name != old_name]
        if others and topo.sites[gateway.site].external:
            problems.append(
                Problem(
                    "site",
                    f"external site '{gateway.site}' already has its router '{others[0].name}'",
                    "an external site has one gateway",
                    conflict=True,
                )
            )
        elif len(others) >= MAX_GATEWAYS_PER_SITE:
            problems.append(
                Problem(
                    "site",
                    f"site '{gateway.site}' already has {len(others)} gateways ({', '.join(g.name for g in others)})",
                    f"a site has at most {MAX_GATEWAYS_PER_SITE} (one active, the others standby)",
                    conflict=True,
                )
            )
        elif others and not gateway.lan_addresses:
            problems.append(
                Problem(
                    "lan_addresses",
                    f"gateway '{gateway.name}' would be the second of site '{gateway.site}' without a LAN address",
                    "give each gateway of an HA pair its own LAN address (the pair watches each other there)",
                )
            )
        elif others and not all(g.lan_addresses for g in others):
            bare = next(g.name for g in others if not g.lan_addresses)
            problems.append(
                Problem(
                    "site",
                    f"site '{gateway.site}''s gateway '{bare}' has no LAN address, which an HA pair needs",
                    f"set lan_addresses on '{bare}' first",
                )
            )
    if not 1 <= gateway.priority <= 255:
        problems.append(Problem("priority", f"{gateway.priority} is outside 1-255", "use 1-255 (higher is preferred)"))
    if gateway.endpoint is not None:
        try:
            parse_host_port(gateway.endpoint)
        except ValueError as exc:
            problems.append(Problem("endpoint", str(exc)))
    if gateway.public_key is not None:
        try:
            check_key(gateway.public_key)
        except ValueError as exc:
            problems.append(Problem("public_key", str(exc)))
        clash = [g.name for g in topo.gateways.values() if g.public_key == gateway.public_key and g.name != old_name]
        if clash:
            problems.append(Problem("public_key", f"already used by gateway '{clash[0]}'", conflict=True))
    if not 1 <= gateway.listen_port <= 65535:
        problems.append(Problem("listen_port", f"{gateway.listen_port} is outside 1-65535"))
    if old_name is not None and old_name in topo.gateways and topo.gateways[old_name].site != gateway.site:
        moving = [f.name for f in topo.forwards.values() if f.gateway == old_name]
        if moving:
            problems.append(
                Problem(
                    "site",
                    f"port forward '{moving[0]}' targets a VM of site '{topo.gateways[old_name].site}'",
                    "delete the gateway's forwards first",
                    conflict=True,
                )
            )
    if gateway.lan_interface == gateway.wan_interface:
        problems.append(Problem("lan_interface", "is the same as wan_interface", "name the LAN and WAN interfaces"))
    for index, address in enumerate(gateway.lan_addresses):
        for pool in topo.pools.values():
            if pool.site != gateway.site and address in pool.range:
                problems.append(
                    Problem(
                        f"lan_addresses[{index}]",
                        f"{address} is in pool '{pool.name}' of site '{pool.site}'",
                        "use an address outside other sites' pools",
                    )
                )
    return problems


def check_connection(topo: Topology, connection: Connection, old_name: str | None = None) -> list[Problem]:
    problems = []
    if connection.name != old_name and connection.name in topo.connections:
        problems.append(
            Problem("name", f"connection '{connection.name}' already exists", "choose another name", conflict=True)
        )
    if connection.network not in topo.networks:
        problems.append(Problem("network", f"unknown network '{connection.network}'", "create the network first"))
    for field_name, site in (("site_a", connection.site_a), ("site_b", connection.site_b)):
        if site not in topo.sites:
            problems.append(Problem(field_name, f"unknown site '{site}'", "create the site first"))
    if connection.site_a == connection.site_b:
        problems.append(Problem("site_b", "a connection joins two different sites"))
    pair = {connection.site_a, connection.site_b}
    for other in topo.connections.values():
        if other.name != old_name and other.network == connection.network and {other.site_a, other.site_b} == pair:
            problems.append(
                Problem(
                    "site_b",
                    f"sites '{connection.site_a}' and '{connection.site_b}' are already "
                    f"connected in '{connection.network}' by '{other.name}'",
                    "update that connection instead",
                    conflict=True,
                )
            )
    if not MTU_RANGE[0] <= connection.mtu <= MTU_RANGE[1]:
        problems.append(
            Problem(
                "mtu",
                f"{connection.mtu} is outside {MTU_RANGE[0]}-{MTU_RANGE[1]}",
                "1420 fits a 1500-byte WAN; IPv6 needs at least 1280",
            )
        )
    if not 0 <= connection.keepalive <= 3600:
        problems.append(Problem("keepalive", f"{connection.keepalive} is outside 0-3600 seconds"))
    return problems


def check_site_delete(topo: Topology, name: str, cascade: bool) -> list[Problem]:
    if cascade:
        return []
    problems = []
    connections = sorted(c.name for c in topo.connections.values() if c.joins(name))
    if connections:
        problems.append(
            Problem(
                "name",
                f"site '{name}' still has connections: {', '.join(connections)}",
                "delete them first, or delete with cascade=true",
                conflict=True,
            )
        )
    bursts = sorted(b.name for b in topo.bursts.values() if b.site == name)
    if bursts:
        problems.append(
            Problem(
                "name",
                f"site '{name}' is where burst policies launch VMs: {', '.join(bursts)}",
                "delete them first, or delete with cascade=true",
                conflict=True,
            )
        )
    return problems


def check_network_delete(topo: Topology, name: str, cascade: bool) -> list[Problem]:
    if cascade:
        return []
    used = sorted(c.name for c in topo.connections.values() if c.network == name)
    used += sorted(p.name for p in topo.pools.values() if p.network == name)
    used += sorted(f"burst policy {b.name}" for b in topo.bursts.values() if b.network == name)
    if used:
        return [
            Problem(
                "name",
                f"network '{name}' is still used by: {', '.join(used)}",
                "delete those first, or delete with cascade=true",
                conflict=True,
            )
        ]
    return []


def check_egress(topo: Topology, egress: Egress, old_name: str | None = None) -> list[Problem]:
    problems = []
    if egress.name != old_name and egress.name in topo.egress:
        problems.append(
            Problem(
                "name",
                f"site '{egress.site}' already has an egress rule in '{egress.network}'",
                "update it instead",
                conflict=True,
            )
        )
    if egress.site not in topo.sites:
        problems.append(Problem("site", f"unknown site '{egress.site}'", "create the site first"))
    if egress.network not in topo.networks:
        problems.append(Problem("network", f"unknown network '{egress.network}'", "create the network first"))
    if egress.mode not in ("local", "via", "none"):
        problems.append(Problem("mode", f"'{egress.mode}' is not an egress mode", "use local, via or none"))
    if egress.mode == "via":
        if not egress.via:
            problems.append(Problem("via", "egress via which site?", "name the site whose gateway it leaves through"))
        elif egress.via == egress.site:
            problems.append(Problem("via", "a site cannot leave through itself", "use mode local"))
        elif egress.via not in topo.connected_sites(egress.site, egress.network):
            problems.append(
                Problem(
                    "via",
                    f"site '{egress.via}' has no enabled connection with '{egress.site}' in '{egress.network}'",
                    "connect the two sites first",
                )
            )
        elif not topo.gateways_of(egress.via):
            problems.append(Problem("via", f"site '{egress.via}' has no gateway", "add its gateway first"))
        elif topo.egress_of(egress.via, egress.network).mode != "local":
            problems.append(
                Problem(
                    "via",
                    f"site '{egress.via}' does not leave locally itself",
                    "egress via a site whose own egress is local (no chains)",
                )
            )
    elif egress.via is not None:
        problems.append(Problem("via", f"only used with mode via (mode is {egress.mode})", "leave it out"))
    if egress.mode != "local" and any(
        e.via == egress.site and e.network == egress.network
        for e in topo.egress.values()
        if e.name != (old_name or egress.name)
    ):
        problems.append(
            Problem(
                "mode", f"other sites leave through '{egress.site}' in '{egress.network}'", "change their egress first"
            )
        )
    return problems


def check_forward(topo: Topology, forward: Forward, old_name: str | None = None) -> list[Problem]:
    problems = []
    if forward.name != old_name and forward.name in topo.forwards:
        problems.append(
            Problem("name", f"forward '{forward.name}' already exists", "choose another name", conflict=True)
        )
    if forward.protocol not in ("tcp", "udp"):
        problems.append(Problem("protocol", f"'{forward.protocol}' is not tcp or udp"))
    for field_name, port in (("public_port", forward.public_port), ("target_port", forward.target_port)):
        if not 1 <= port <= 65535:
            problems.append(Problem(field_name, f"port {port} is outside 1-65535"))
    gateway = topo.gateways.get(forward.gateway)
    if gateway is None:
        problems.append(Problem("gateway", f"unknown gateway '{forward.gateway}'", "create the gateway first"))
        return problems
    for other in topo.forwards.values():
        if (
            other.name != (old_name or forward.name)
            and other.gateway == forward.gateway
            and (other.protocol, other.public_port) == (forward.protocol, forward.public_port)
        ):
            problems.append(
                Problem(
                    "public_port",
                    f"{forward.protocol}/{forward.public_port} on '{forward.gateway}' is "
                    f"already forwarded by '{other.name}'",
                    "use another public port",
                    conflict=True,
                )
            )
    if forward.protocol == "udp" and forward.public_port == gateway.listen_port:
        problems.append(
            Problem(
                "public_port",
                f"udp/{forward.public_port} is the gateway's tunnel port",
                "use another public port",
                conflict=True,
            )
        )
    if forward.protocol == "tcp" and forward.public_port == 22:
        problems.append(
            Problem("public_port", "tcp/22 is the gateway's own ssh port", "use another public port", conflict=True)
        )
    pools = [p for p in topo.pools.values() if p.site == gateway.site]
    if not any(forward.target_ip in p.range for p in pools):
        problems.append(
            Problem(
                "target_ip",
                f"unknown endpoint: {forward.target_ip} is not in a pool of site "
                f"'{gateway.site}' (gateway '{forward.gateway}')",
                "forwards reach a VM of the gateway's own site",
            )
        )
    return problems


def check_pool_keeps_forwards(topo: Topology, pool: Pool, new: Pool | None) -> list[Problem]:
    """A pool may not shrink or go away under a port forward's target."""
    problems = []
    others = [p for p in topo.pools.values() if p.site == pool.site and p.name != pool.name]
    for forward in topo.forwards.values():
        gateway = topo.gateways.get(forward.gateway)
        if gateway is None or gateway.site != pool.site or forward.target_ip not in pool.range:
            continue
        if (new is None or forward.target_ip not in new.range) and not any(
            forward.target_ip in p.range for p in others
        ):
            problems.append(
                Problem(
                    "range",
                    f"forward '{forward.name}' targets {forward.target_ip}, which would leave the site's pools",
                    f"delete or change forward '{forward.name}' first",
                    conflict=True,
                )
            )
    return problems


def check_connection_keeps_egress(topo: Topology, connection: Connection, new: Connection | None) -> list[Problem]:
    """A connection an egress rule leaves through may not be deleted or disabled."""
    if new is not None and new.enabled:
        return []
    users = [
        e.name
        for e in topo.egress.values()
        if e.network == connection.network
        and e.mode == "via"
        and {e.site, e.via} == {connection.site_a, connection.site_b}
    ]
    if users:
        return [
            Problem(
                "name",
                f"egress '{users[0]}' leaves to the Internet over this connection",
                "change that egress first",
                conflict=True,
            )
        ]
    return []


def check_burst(topo: Topology, spec: BurstSpec, field: str = "") -> list[Problem]:
    """What the topology must hold for this policy: its network, a site with a provider that can
    launch machines, the pool it takes addresses from, the pool a `pool` signal reads."""
    at = f"{field}." if field else ""
    problems: list[Problem] = []
    if spec.scale_in_below >= spec.scale_out_above:
        problems.append(
            Problem(
                f"{at}scale_in_below",
                f"{spec.scale_in_below:g} is not below scale_out_above ({spec.scale_out_above:g})",
                "leave a gap between the two: it is the hysteresis that stops flapping",
            )
        )
    if spec.min_vms > spec.max_vms:
        problems.append(Problem(f"{at}min_vms", f"{spec.min_vms} is above max_vms ({spec.max_vms})", "lower it"))
    for part in SIGNAL_NEEDS[spec.signal.kind]:
        if getattr(spec.signal, part) is None:
            problems.append(
                Problem(f"{at}signal.{part}", f"a {spec.signal.kind} signal needs {part}", f"add signal.{part}")
            )
    if spec.network not in topo.networks:
        problems.append(Problem(f"{at}network", f"unknown network '{spec.network}'", "create the network first"))
    site = topo.sites.get(spec.site)
    if site is None:
        problems.append(Problem(f"{at}site", f"unknown site '{spec.site}'", "create the site first"))
    elif site.provider not in ("aws", "openstack", "lab"):
        problems.append(
            Problem(
                f"{at}site",
                f"site '{spec.site}' has provider '{site.provider}', which cannot launch machines",
                "burst into a site whose provider is aws, openstack or lab",
            )
        )
    elif site.provider in ("aws", "openstack") and not site.cloud:
        problems.append(
            Problem(
                f"{at}site", f"site '{spec.site}' has no {site.provider} cloud block", "add one (docs/providers.md)"
            )
        )
    pools = [p for p in topo.pools.values() if p.network == spec.network and p.site == spec.site]
    if spec.pool is not None:
        if spec.pool not in {p.name for p in pools}:
            problems.append(
                Problem(
                    f"{at}pool",
                    f"'{spec.pool}' is not a pool of site '{spec.site}' in network '{spec.network}'",
                    f"choose one of: {', '.join(sorted(p.name for p in pools)) or 'none (create one)'}",
                )
            )
    elif len(pools) != 1 and site is not None and spec.network in topo.networks:
        problems.append(
            Problem(
                f"{at}pool",
                f"site '{spec.site}' has {len(pools)} pools in network '{spec.network}'",
                "name the pool the VMs take addresses from" if pools else "create a pool for the site first",
            )
        )
    signal_pool = topo.pools.get(spec.signal.pool or "") if spec.signal.kind == "pool" else None
    if spec.signal.kind == "pool" and spec.signal.pool is not None and signal_pool is None:
        problems.append(Problem(f"{at}signal.pool", f"unknown pool '{spec.signal.pool}'", "name a private pool"))
    price_needed = spec.budget.max_cost_per_hour is not None
    if price_needed and spec.template.size not in spec.budget.prices:
        problems.append(
            Problem(
                f"{at}budget.prices",
                f"max_cost_per_hour needs the price of size '{spec.template.size}'",
                f"add budget.prices.{spec.template.size}: PRICE_PER_HOUR",
            )
        )
    return problems


def check_pool_keeps_bursts(topo: Topology, old: Pool, new: Pool | None) -> list[Problem]:
    """A pool that burst policies name keeps its name (policies refer to pools by name)."""
    if new is not None and new.name == old.name:
        return []
    users = sorted(b.name for b in topo.bursts.values() if old.name in (b.pool, b.signal.pool))
    if not users:
        return []
    what = "deleted" if new is None else "renamed"
    return [
        Problem(
            "name",
            f"pool '{old.name}' is named by burst policies: {', '.join(users)}; it cannot be {what}",
            "change or delete those policies first",
            conflict=True,
        )
    ]
