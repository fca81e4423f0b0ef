"""Preflight checks every provider shares (pure): addresses the cloud keeps for itself, the MTU budget,
which gateway the cloud identity means. Provider-specific checks live in the provider modules."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from cloudgw.mapping.index import l2_blocker
from cloudgw.model.addr import AddressRange
from cloudgw.model.defaults import TUNNEL_MTU, VXLAN_OVERHEAD
from cloudgw.model.document import vni_of
from cloudgw.model.rules import reserved_addresses
from cloudgw.model.topology import Topology
from cloudgw.providers.base import Finding, Need, Observed

WIREGUARD_OVERHEAD = 60  # outer IPv4 20 + UDP 8 + WireGuard 32 bytes per packet


def _spans(addresses: list[IPv4Address]) -> list[AddressRange]:
    spans: list[AddressRange] = []
    for address in sorted(addresses):
        if spans and int(address) == int(spans[-1].last) + 1:
            spans[-1] = AddressRange(spans[-1].first, address)
        else:
            spans.append(AddressRange(address, address))
    return spans


def reserved_collisions(topo: Topology, need: Need, seen: Observed | None) -> list[Finding]:
    """Remote pools that hold addresses this site's cloud reserves: its VMs can never reach them
    (on AWS .1 is the VPC router, .2 DNS, .3 reserved). The proposal's own example trips this."""
    findings = []
    for name, cidr in need.networks:
        reserved = (
            seen.reserved if seen is not None and seen.subnet == cidr else reserved_addresses(need.provider, cidr)
        )
        # the network and broadcast addresses are in no pool anywhere (model.rules refuses them)
        cloud_only = {a: why for a, why in reserved.items() if a not in (cidr.network_address, cidr.broadcast_address)}
        for pool in topo.pools_in(name):
            if pool.site == need.site or pool.site not in topo.connected_sites(need.site, name):
                continue
            hits = [a for a in cloud_only if a in pool.range]
            if not hits:
                continue
            spans = ", ".join(str(s) for s in _spans(hits))
            reasons = "; ".join(f"{a}: {cloud_only[a]}" for a in sorted(hits))
            first_free = max(hits) + 1 if max(hits) < pool.range.last else None
            fix = (
                f"start pool '{pool.name}' at {first_free} (renumber those VMs)"
                if first_free is not None and min(hits) == pool.range.first
                else f"leave {spans} out of pool '{pool.name}'"
            )
            findings.append(
                Finding(
                    need.site,
                    "reserved",
                    "error",
                    f"pool '{pool.name}' of site '{pool.site}' holds {spans}, which {need.provider} keeps for itself "
                    f"in {cidr} of site '{need.site}' ({reasons}): VMs there can never reach them",
                    fix,
                )
            )
    return findings


def mtu_budget(topo: Topology, need: Need, wan_mtu: int | None, where: str) -> list[Finding]:
    """Each connection's tunnel MTU plus WireGuard's 60 bytes must fit the site's WAN path."""
    if wan_mtu is None:
        return []
    findings = []
    for connection in topo.connections_of(need.site):
        size = connection.mtu + WIREGUARD_OVERHEAD
        if size > wan_mtu:
            findings.append(
                Finding(
                    need.site,
                    "mtu",
                    "error",
                    f"connection '{connection.name}' sends {size}-byte packets (tunnel MTU {connection.mtu} + "
                    f"{WIREGUARD_OVERHEAD} bytes of WireGuard) but {where} carries {wan_mtu}",
                    f"set mtu: {max(1280, (wan_mtu - WIREGUARD_OVERHEAD) // 16 * 16)} or less on connection "
                    f"'{connection.name}'",
                )
            )
    return findings


def gateway_named(topo: Topology, need: Need) -> list[Finding]:
    if need.gateway is not None:
        return []
    count = len(topo.gateways_of(need.site))
    message = (
        f"site '{need.site}' has no gateway yet"
        if count == 0
        else f"site '{need.site}' has {count} gateways and its cloud block names none of them"
    )
    return [
        Finding(need.site, "gateway", "error", message, "add the gateway, or name it in the cloud block (gateway:)")
    ]


def outside_subnet(need: Need, seen: Observed) -> list[Finding]:
    """The stretched network must be the cloud subnet the identity names."""
    if seen.subnet is None:
        return []
    findings = []
    for name, cidr in need.networks:
        if cidr != seen.subnet:
            findings.append(
                Finding(
                    need.site,
                    "subnet",
                    "error",
                    f"network '{name}' is {cidr} but the cloud subnet of site '{need.site}' is {seen.subnet}",
                    "name the subnet that holds this network's VMs in the cloud block",
                )
            )
    return findings


def hostname_peers(topo: Topology, need: Need) -> list[Finding]:
    findings = []
    for other in {s for n, _ in need.networks for s in topo.connected_sites(need.site, n)}:
        for gateway in topo.gateways_of(other):
            if gateway.endpoint and not any(str(p) == gateway.endpoint.rpartition(":")[0] for p in need.peers):
                findings.append(
                    Finding(
                        need.site,
                        "tunnel-port",
                        "warning",
                        f"gateway '{gateway.name}' has endpoint {gateway.endpoint}, not an address: the tunnel port "
                        "cannot be opened to it by address",
                        "give the peer's endpoint as IP:PORT (its floating or Elastic IP)",
                    )
                )
    return findings


def covering(ranges: tuple[AddressRange, ...]) -> list[IPv4Network]:
    return sorted({cidr for r in ranges for cidr in r.cidrs()})


ECHO_REQUEST = 8  # ICMP type: the agents' path MTU probes (agent/pathprobe.py) are DF echo requests


def tunnel_rules(need: Need) -> set[tuple[str, int, str]]:
    """What the peer gateways must be able to send to this site's gateway: the tunnel port, and echo
    requests for path MTU discovery. (protocol, port or ICMP type, source CIDR)."""
    rules = set()
    for peer in need.peers:
        rules.add(("udp", need.listen_port, f"{peer}/32"))
        rules.add(("icmp", ECHO_REQUEST, f"{peer}/32"))
    return rules


def rule_text(rule: tuple[str, int, str]) -> str:
    protocol, port, cidr = rule
    return f"{'icmp echo' if protocol == 'icmp' else f'{protocol}/{port}'} from {cidr}"


def l2_networks(topo: Topology, site: str) -> list[Finding]:
    """Each L2 network the site takes part in: does it bridge, and what that asks of its cloud."""
    findings = []
    networks = sorted({p.network for p in topo.pools.values() if p.site == site})
    for name in networks:
        network = topo.networks.get(name)
        if network is None or network.mode != "l2":
            continue
        why = l2_blocker(topo, site, {site: topo.gateways_of(site)})
        if why is not None:
            findings.append(
                Finding(site, "l2", "warning", f"site '{site}' stays L3 inside L2 network '{name}': {why}", "")
            )
            continue
        mtus = [c.mtu for c in topo.connections.values() if c.network == name and c.enabled]
        budget = min(mtus, default=TUNNEL_MTU) - VXLAN_OVERHEAD
        findings.append(
            Finding(
                site,
                "l2",
                "ok",
                f"site '{site}' bridges L2 network '{name}' (VNI {vni_of(name)}): frames up to {budget} bytes "
                "cross; TCP's MSS is clamped to fit, larger non-TCP datagrams are dropped by the bridge",
                "give the VMs an MTU of at most the budget for large UDP, or raise the connections' MTU on a "
                "jumbo WAN (docs/l2.md)",
            )
        )
        if topo.sites[site].provider == "openstack":
            findings.append(
                Finding(
                    site,
                    "l2-port-security",
                    "warning",
                    f"Neutron's port security drops frames whose source MAC is not the port's own: the gateway "
                    f"forwards the other sites' VMs' frames with their MACs in '{name}'",
                    "openstack port set --no-security-group --disable-port-security GATEWAY_LAN_PORT "
                    "(or allowed address pairs with each remote MAC)",
                )
            )
    return findings
