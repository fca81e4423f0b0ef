"""Explain a path (pure): "why can't SRC reach DST?" walked hop by hop over what the controller knows:
the mapping (both addresses), the connection, each gateway's last report (online, applied revision,
its WireGuard peer for the other side, allowed IPs, handshake, path MTU, problems), both directions.
Each hop is ok, broken (with the reason and the fix), warning, or unknown (not known from here).

The gateways' reports are their heartbeats (every few seconds); a report older than the gateway's
offline threshold makes the gateway a finding, not an error of this function.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Literal

from cloudgw.mapping.resolve import Resolution, resolve
from cloudgw.model.topology import Connection, Topology

State = Literal["ok", "broken", "warning", "unknown"]
HANDSHAKE_STALE_S = 180.0  # WireGuard re-handshakes every 2 minutes on a live tunnel


@dataclass(frozen=True)
class PeerSeen:
    public_key: str
    last_handshake: float = 0.0  # unix time; 0 = never
    allowed_ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class GatewayReport:
    """A gateway as its last heartbeat showed it."""

    name: str
    online: bool
    seen_age_s: float | None  # None: never reported
    applied_revision: int | None
    doc_revision: int
    peers: tuple[PeerSeen, ...] = ()
    path_warnings: dict[str, str] = field(default_factory=dict)  # peer name -> MTU warning
    path_mtu: dict[str, int] = field(default_factory=dict)  # peer name -> tunnel MTU used
    problems: dict[str, str] = field(default_factory=dict)  # peer name -> why it is not configured
    last_error: str | None = None
    counters: dict[str, int] = field(default_factory=dict)  # its named nft counters: the spoof baseline


@dataclass
class Hop:
    hop: str
    state: State
    detail: str
    fix: str = ""
    ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Explanation:
    src: str
    dst: str
    network: str | None
    verdict: State
    hops: list[Hop]
    gateways: tuple[str, str] | None = None  # (source's, destination's) when the walk reached them

    def as_dict(self) -> dict[str, Any]:
        return {
            "src": self.src,
            "dst": self.dst,
            "network": self.network,
            "verdict": self.verdict,
            "hops": [h.as_dict() for h in self.hops],
        }

    def add(self, hops: list[Hop]) -> None:
        self.hops += hops
        self.verdict = verdict_of(self.hops)


SEVERITY: tuple[State, ...] = ("broken", "unknown", "warning")


def verdict_of(hops: list[Hop]) -> State:
    states = {h.state for h in hops}
    return next((state for state in SEVERITY if state in states), "ok")


def _network(topo: Topology, src: IPv4Address, dst: IPv4Address, name: str | None) -> tuple[str | None, Hop]:
    if name is not None:
        network = topo.networks.get(name)
        if network is None:
            return None, Hop("network", "broken", f"no network '{name}'", "cloudgw network list shows them")
        outside = [str(a) for a in (src, dst) if a not in network.cidr]
        if outside:
            return None, Hop(
                "network",
                "broken",
                f"{' and '.join(outside)} outside network '{name}' ({network.cidr})",
                "name the network both addresses are in",
            )
        return name, Hop("network", "ok", f"both in network '{name}' ({network.cidr})")
    both = sorted(n.name for n in topo.networks.values() if src in n.cidr and dst in n.cidr)
    if not both:
        return None, Hop(
            "network", "broken", f"no network holds both {src} and {dst}", "cloudgw network list; stretch one subnet"
        )
    if len(both) > 1:
        return None, Hop("network", "broken", f"several networks hold both: {', '.join(both)}", "pass --network")
    cidr: IPv4Network = topo.networks[both[0]].cidr
    return both[0], Hop("network", "ok", f"both in network '{both[0]}' ({cidr})")


def _address(topo: Topology, network: str, ip: IPv4Address, role: str) -> tuple[Resolution, Hop]:
    found = resolve(topo, network, ip)
    gateways = {str(a["gateway"]) for a in found.announcements}
    sites = {str(a["site"]) for a in found.announcements if a["site"]}
    if found.state == "effective" and len(sites) <= 1:
        return found, Hop(
            role, "ok", f"{ip} is at site '{found.site}' behind gateway '{found.gateway}' ({found.reason})"
        )
    if found.state == "effective":
        return found, Hop(
            role,
            "warning",
            f"{ip} is announced by gateways of several sites ({', '.join(sorted(gateways))}); {found.reason}",
            "the same address is on a VM at two sites: renumber the one outside the pool",
        )
    if found.state == "unknown":
        return found, Hop(
            role,
            "broken",
            f"{ip} is outside every pool of network '{network}'",
            "add it to the pool of the site it is at (cloudgw pool update), or give that VM an address from a pool",
        )
    if found.state == "pool-only":
        return found, Hop(
            role,
            "broken",
            f"{ip} is in pool of site '{found.site}' but no gateway has seen it ({found.reason})",
            "start the VM, or let it send a packet; on AWS/OpenStack give the site a cloud block so the cloud lists it",
        )
    if len(sites) > 1:
        fix = "the same address is on VMs at two sites: renumber the one outside the pool"
    else:
        fix = "move the VM to the site whose pool holds the address, or change the pools"
    return found, Hop(role, "broken", f"{ip}: {found.reason}", fix)


def _connection(topo: Topology, network: str, a: str, b: str) -> tuple[Connection | None, Hop]:
    found = next(
        (c for c in topo.connections.values() if c.network == network and {c.site_a, c.site_b} == {a, b}), None
    )
    if found is None:
        return None, Hop(
            "connection",
            "broken",
            f"no connection joins sites '{a}' and '{b}' in network '{network}'",
            f"cloudgw connection add --network {network} --site-a {a} --site-b {b}",
        )
    if not found.enabled:
        return found, Hop(
            "connection",
            "broken",
            f"connection '{found.name}' is disabled",
            f"cloudgw connection update {found.name} --enable",
        )
    return found, Hop("connection", "ok", f"connection '{found.name}' is enabled (tunnel MTU {found.mtu})")


def _gateway(report: GatewayReport | None, name: str) -> Hop:
    hop = f"gateway {name}"
    if report is None or report.seen_age_s is None:
        return Hop(
            hop, "broken", f"gateway '{name}' has never reported", f"start its agent: cloudgw gateway show {name}"
        )
    if not report.online:
        return Hop(
            hop,
            "broken",
            f"gateway '{name}' is offline: its last report is {report.seen_age_s:.0f} s old",
            f"start its agent (systemctl start cloudgw-agent@{name}) and check it reaches the controller",
        )
    if report.applied_revision is None or report.applied_revision < report.doc_revision:
        return Hop(
            hop,
            "warning",
            f"gateway '{name}' applies revision {report.applied_revision} of {report.doc_revision}"
            + (f": {report.last_error}" if report.last_error else ""),
            f"wait a few seconds; if it stays, cloudgw gateway show {name} says why",
        )
    return Hop(hop, "ok", f"online (report {report.seen_age_s:.0f} s old), revision {report.applied_revision}")


def _covers(allowed: tuple[str, ...], ip: IPv4Address) -> bool:
    for text in allowed:
        try:
            if ip in IPv4Network(text, strict=False):
                return True
        except ValueError:
            continue
    return False


def _tunnel(
    topo: Topology, report: GatewayReport | None, local: str, remote: str, target: IPv4Address, now: float
) -> list[Hop]:
    hop = f"tunnel {local} -> {remote}"
    peer_key = topo.gateways[remote].public_key
    if report is None or report.seen_age_s is None or not report.online:
        return [Hop(hop, "unknown", f"not known: gateway '{local}' does not report")]
    if remote in report.problems:
        return [
            Hop(
                hop,
                "broken",
                f"'{local}' could not configure peer '{remote}': {report.problems[remote]}",
                f"cloudgw gateway show {remote}: fix its endpoint",
            )
        ]
    if peer_key is None:
        return [Hop(hop, "broken", f"gateway '{remote}' has not joined", f"cloudgw gateway join-token {remote}")]
    peer = next((p for p in report.peers if p.public_key == peer_key), None)
    if peer is None:
        return [
            Hop(
                hop,
                "broken",
                f"'{local}' has no WireGuard peer with the key of '{remote}' ({peer_key[:8]}…): one side holds an "
                "old key",
                f"let '{local}' apply its newest document; if '{remote}' made a new key, it must join again",
            )
        ]
    hops = []
    if not _covers(peer.allowed_ips, target):
        hops.append(
            Hop(
                hop,
                "broken",
                f"{target} is not in the allowed IPs of peer '{remote}' on '{local}'",
                f"let '{local}' apply its newest document (the mapping has {target} at '{remote}')",
            )
        )
    age = now - peer.last_handshake if peer.last_handshake else None
    if age is None or age > HANDSHAKE_STALE_S:
        when = "never" if age is None else f"{age:.0f} s ago"
        hops.append(
            Hop(
                hop,
                "broken",
                f"no recent WireGuard handshake between '{local}' and '{remote}' (last: {when})",
                f"check that UDP {topo.gateways[remote].listen_port} reaches '{remote}' at "
                f"{topo.gateways[remote].endpoint or 'its endpoint'} and that its agent runs",
            )
        )
    if remote in report.path_warnings:
        hops.append(Hop(hop, "warning", report.path_warnings[remote], "see docs/deploy.md, MTU"))
    if not hops:
        mtu = report.path_mtu.get(remote)
        detail = f"peer configured, {target} allowed, handshake {age:.0f} s ago" + (
            f", tunnel MTU {mtu}" if mtu else ""
        )
        hops.append(Hop(hop, "ok", detail))
    return hops


def explain(
    topo: Topology,
    reports: dict[str, GatewayReport],
    src: IPv4Address,
    dst: IPv4Address,
    network: str | None = None,
    now: float = 0.0,
) -> Explanation:
    hops: list[Hop] = []
    name, hop = _network(topo, src, dst, network)
    hops.append(hop)
    if name is None:
        return Explanation(str(src), str(dst), network, "broken", hops)
    source, hop = _address(topo, name, src, "source")
    hops.append(hop)
    target, hop = _address(topo, name, dst, "destination")
    hops.append(hop)
    a, b = source.site, target.site
    if a is None or b is None:
        return Explanation(str(src), str(dst), name, verdict_of(hops), hops)
    if a == b:
        hops.append(Hop("path", "ok", f"both at site '{a}': they talk on its LAN, not through cloudgw"))
        return Explanation(str(src), str(dst), name, verdict_of(hops), hops)
    _, hop = _connection(topo, name, a, b)
    hops.append(hop)
    if hop.state == "broken":  # no tunnel is meant to exist: what the gateways hold follows from it
        for address_hop in hops[1:3]:
            if address_hop.state == "broken" and "no gateway has seen it" in address_hop.detail:
                address_hop.state, address_hop.fix = "unknown", "see the connection below"
                address_hop.detail += "; a gateway announces only while its site has an enabled connection"
        return Explanation(str(src), str(dst), name, "broken", hops)
    if source.gateway is None or target.gateway is None:
        return Explanation(str(src), str(dst), name, verdict_of(hops), hops)
    hops.append(_gateway(reports.get(source.gateway), source.gateway))
    hops += _tunnel(topo, reports.get(source.gateway), source.gateway, target.gateway, dst, now)
    hops.append(_gateway(reports.get(target.gateway), target.gateway))
    return_hops = _tunnel(topo, reports.get(target.gateway), target.gateway, source.gateway, src, now)
    for h in return_hops:
        h.hop += " (return)"
    hops += return_hops
    return Explanation(str(src), str(dst), name, verdict_of(hops), hops, (source.gateway, target.gateway))


SPOOF_COUNTERS = {
    "lan_spoofed": "from this site's LAN with a source outside its pools",
    "tunnel_spoofed": "from the tunnel with a source the peer may not send",
}


def kernel_hops(
    gateway: str,
    target: IPv4Address,
    answer: dict[str, Any] | None,
    baseline: dict[str, int],
    tunnel: str,
    known_key: str | None = None,
    ms: float | None = None,
) -> list[Hop]:
    """What a gateway's kernel holds for one path, as it answered the controller's question."""
    hops = _kernel_hops(gateway, target, answer, baseline, tunnel, known_key)
    for hop in hops:
        hop.ms = ms
    return hops


def _kernel_hops(
    gateway: str,
    target: IPv4Address,
    answer: dict[str, Any] | None,
    baseline: dict[str, int],
    tunnel: str,
    known_key: str | None,
) -> list[Hop]:
    hop = f"kernel {gateway}"
    if answer is None:
        return [
            Hop(
                hop,
                "unknown",
                f"'{gateway}' did not answer within the deadline (an older agent, or it watches another replica)",
            )
        ]
    hops = []
    own = answer.get("public_key")
    if own and known_key and own != known_key:
        hops.append(
            Hop(
                hop,
                "broken",
                f"'{gateway}''s WireGuard key is {own[:8]}… but the controller and its peers know {known_key[:8]}…: "
                "one side changed its key",
                f"restart the agent on '{gateway}' (it puts its own key back), or let it join again if the new key "
                "is meant",
            )
        )
    route = answer.get("route")
    if not route or route.get("dev") != tunnel:
        where = f"a route via {route['dev']}" if route else "no route"
        hops.append(
            Hop(
                hop,
                "broken",
                f"{where} for {target} on '{gateway}': it should go into the tunnel ({tunnel})",
                f"the agent puts it back at its next reconcile; if not, cloudgw gateway show {gateway}",
            )
        )
    if not answer.get("proxy_arp"):
        hops.append(
            Hop(
                hop,
                "broken",
                f"'{gateway}' does not answer ARP for {target} on its LAN: local VMs cannot reach it",
                "the agent puts the proxy-ARP entry back at its next reconcile; if not, cloudgw gateway show "
                + gateway,
            )
        )
    if not answer.get("peer_present"):
        hops.append(Hop(hop, "broken", f"'{gateway}''s kernel holds no WireGuard peer with that key", "see the tunnel"))
    elif not answer.get("peer_allows_target"):
        hops.append(Hop(hop, "broken", f"{target} is not in the kernel's allowed IPs on '{gateway}'", "see the tunnel"))
    for counter, meaning in SPOOF_COUNTERS.items():
        grew = int(answer.get("counters", {}).get(counter, 0)) - int(baseline.get(counter, 0))
        if grew > 0:
            hops.append(
                Hop(
                    hop,
                    "warning",
                    f"'{gateway}' dropped {grew} packets {meaning} since its last report (counter {counter})",
                    "a VM sends with an address that is not its own: find it (tcpdump on the LAN) and fix its address",
                )
            )
    probe = answer.get("probe")
    if probe:
        sizes, answered = probe.get("sizes", []), set(probe.get("answered", []))
        big = max(sizes, default=0)
        if big and big in answered:
            hops.append(Hop(hop, "ok", f"DF probes of {', '.join(map(str, sizes))} bytes answered through the tunnel"))
        elif answered:
            hops.append(
                Hop(
                    hop,
                    "broken",
                    f"small probes cross the tunnel but {big}-byte ones do not: the WAN path carries less than the "
                    "tunnel MTU",
                    "lower the connection's MTU (cloudgw connection update NAME --mtu ...), or fix the path",
                )
            )
        else:
            hops.append(
                Hop(hop, "broken", "no probe answered through the tunnel", "see the tunnel and gateway hops above")
            )
    if answer.get("error"):
        hops.append(Hop(hop, "unknown", str(answer["error"])))
    if not hops:
        hops.append(Hop(hop, "ok", f"route into {tunnel}, proxy-ARP and WireGuard peer in place for {target}"))
    return hops
