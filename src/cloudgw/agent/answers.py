"""A gateway's own view of one path (explain, docs/explain.md): read from its kernel now, for the
controller's question or for `cloudgw agent explain` when the controller is away."""

from __future__ import annotations

import os
from ipaddress import IPv4Address
from typing import Any

from cloudgw.agent.keys import public_key_of
from cloudgw.agent.pathprobe import RawIcmp
from cloudgw.dataplane.base import Dataplane
from cloudgw.mapping.explain import Hop, kernel_hops, verdict_of
from cloudgw.model.defaults import TUNNEL_INTERFACE, TUNNEL_MTU
from cloudgw.model.document import GatewayDocument

SMALL_PROBE = 84  # bytes: crosses any tunnel; tells "down" from "too big"


def answer_path(dataplane: Dataplane, question: dict[str, Any]) -> dict[str, Any]:
    """The route to the target, the proxy-ARP entry, the WireGuard peer and its allowed IPs, the
    named counters, this gateway's own key, and a DF probe through the tunnel to the other gateway's
    LAN address (84 bytes and the tunnel MTU)."""
    target = IPv4Address(question["target"])
    observation = dataplane.observe()
    state = observation.state
    routes = [r for r in state.routes.values() if target in r.dst]
    route = max(routes, key=lambda r: r.dst.prefixlen, default=None)
    peer = next((p for p in state.peers.values() if p.public_key == question.get("peer_key")), None)
    stats = next((s for s in observation.peer_stats if s.public_key == question.get("peer_key")), None)
    device = next(iter(state.devices.values()), None)
    answer: dict[str, Any] = {
        "public_key": public_key_of(str(device.private_key)) if device is not None else None,
        "route": {"dst": str(route.dst), "dev": route.dev, "mtu": route.mtu} if route else None,
        "proxy_arp": any(n.ip == target for n in state.neighbours),
        "peer_present": peer is not None,
        "peer_allows_target": peer is not None and any(target in net for net in peer.allowed_ips),
        "last_handshake": stats.last_handshake if stats else 0.0,
        "counters": dict(observation.counters),
    }
    if question.get("probe"):
        sizes = sorted({SMALL_PROBE, int(question.get("mtu", TUNNEL_MTU))})
        try:
            icmp = RawIcmp()
            try:
                answered = icmp.round(str(question["probe"]), sizes, ident=os.getpid() & 0xFFFF, timeout=1.0)
            finally:
                icmp.close()
            answer["probe"] = {"sizes": sizes, "answered": sorted(answered)}
        except OSError as exc:  # no raw socket (not root): say so, the rest still answers
            answer["error"] = f"probe not sent: {exc.strerror or exc}"
    return answer


def local_explain(
    dataplane: Dataplane, doc: GatewayDocument, src: IPv4Address, dst: IPv4Address, now: float
) -> dict[str, Any]:
    """What one gateway can check alone, from its last document and its kernel: where its document
    says DST lives, and everything its kernel holds for the path (the controller may be down)."""
    gateway = doc.gateway.name
    hops = [Hop("document", "ok", f"the last document this gateway applied: revision {doc.revision}")]
    network = next((n for n in doc.networks if src in n.cidr and dst in n.cidr), None)
    if network is None:
        hops.append(Hop("network", "broken", f"no network of '{gateway}' holds both {src} and {dst}"))
        return _result(src, dst, None, hops)
    remote = next((e for e in network.remote_endpoints if e.ip == dst), None)
    if remote is None:
        local = any(dst in p.range for p in network.pools if p.site == doc.gateway.site)
        detail = (
            f"{dst} is at this gateway's own site: it talks on the LAN"
            if local
            else f"{dst} is not a remote endpoint in revision {doc.revision}: no route for it here"
        )
        hops.append(Hop("destination", "ok" if local else "broken", detail))
        return _result(src, dst, network.name, hops)
    peer = next((p for p in doc.peers if p.name == remote.gateway), None)
    hops.append(Hop("destination", "ok", f"{dst} is behind gateway '{remote.gateway}' (revision {doc.revision})"))
    question = {
        "target": str(dst),
        "peer": remote.gateway,
        "peer_key": peer.public_key if peer else None,
        "probe": next((str(a) for a in peer.lan_addresses if a in network.cidr), None) if peer else None,
        "mtu": (peer.mtu if peer and peer.mtu else doc.gateway.tunnel.mtu),
    }
    answer = answer_path(dataplane, question)
    age = now - answer["last_handshake"] if answer["last_handshake"] else None
    hops.append(
        Hop(
            f"tunnel {gateway} -> {remote.gateway}",
            "ok" if age is not None and age < 180 else "broken",
            "never a handshake" if age is None else f"last handshake {age:.0f} s ago",
            "" if age is not None and age < 180 else f"check that UDP reaches '{remote.gateway}' and its agent runs",
        )
    )
    hops += kernel_hops(gateway, dst, answer, {}, TUNNEL_INTERFACE)
    return _result(src, dst, network.name, hops)


def _result(src: IPv4Address, dst: IPv4Address, network: str | None, hops: list[Hop]) -> dict[str, Any]:
    return {
        "src": str(src),
        "dst": str(dst),
        "network": network,
        "verdict": verdict_of(hops),
        "local": True,
        "hops": [h.as_dict() for h in hops],
    }
