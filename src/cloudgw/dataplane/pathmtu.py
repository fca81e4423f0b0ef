"""The tunnel MTU of each peer, from the path its packets really take (pure).

Design notes
- A WireGuard packet is the inner packet plus 60 bytes on an IPv4 underlay (20 IP + 8 UDP + 32
  WireGuard). An inner packet that makes the outer one larger than the path carries is lost: the
  sender (wireguard-go) gets EMSGSIZE, or a router on the way drops it. Pings of the usual size pass,
  bulk TCP moves nothing: the classic black hole of a 1500-byte tunnel setting on a 1400-byte WAN.
- So each peer gets its own tunnel MTU: the configured one (the connection's), lowered to what the
  path carries. The path is, in order of trust: an active probe (echo requests with DF set, of many
  sizes, to the peer's public address: the largest one answered crossed the path in both directions),
  else the local WAN device's MTU (the probe may be filtered; then at least our own link is honoured).
- Where it is set: the /32 and pool routes into the tunnel carry it as their route MTU (RTAX_MTU),
  and the device keeps the largest. For forwarded packets the kernel always honours the route MTU: a
  packet over it with DF set is answered with ICMP "fragmentation needed" (so UDP and every other
  protocol learn the path MTU instead of losing packets), one without DF is fragmented, and the nft
  MSS clamp (`rt mtu`) reads the same route MTU, so TCP never even tries. One peer's small path never
  shrinks the others'.
- WireGuard pads every plaintext to a multiple of 16 bytes, capped at the *device* MTU, not the
  route's: an inner packet of 1340 bytes leaves as 1404 on a 1400-byte path (measured: wireguard-go
  logs "sendmmsg: message too long" and bulk TCP stalls). So a route MTU below the device's is
  rounded down to a multiple of 16 (1400-byte path: 1328, not 1340).
"""

from __future__ import annotations

from dataclasses import dataclass

WG_OVERHEAD_IPV4 = 60  # outer IPv4 header 20 + UDP 8 + WireGuard data header and tag 32
WG_PADDING = 16  # WireGuard pads plaintext to a multiple of this (up to the device MTU)
MIN_TUNNEL_MTU = 1280  # below this IPv6 inside the tunnel breaks; also WireGuard's own floor


@dataclass(frozen=True)
class PathFacts:
    """What the agent knows about the underlay towards one peer."""

    wan_mtu: int | None = None  # MTU of the local WAN device
    probed: int | None = None  # largest underlay packet answered by the peer (DF set), None = unknown


@dataclass(frozen=True)
class PeerMtu:
    mtu: int  # the tunnel MTU used towards this peer
    configured: int  # the connection's MTU (what the admin asked for, or the default)
    path: int | None  # the underlay MTU believed, None = nothing known
    source: str  # "probe", "wan" (the local device only) or "configured" (nothing known)
    warning: str | None = None  # set when the configured MTU does not fit the path

    def as_dict(self) -> dict[str, object]:
        return {
            "mtu": self.mtu,
            "configured": self.configured,
            "path": self.path,
            "source": self.source,
            "warning": self.warning,
        }


def peer_mtu(configured: int, facts: PathFacts) -> PeerMtu:
    """The tunnel MTU towards one peer: the configured MTU, never more than the path carries."""
    if facts.probed is not None:
        path, source = facts.probed, "probe"
        if facts.wan_mtu is not None:
            path = min(path, facts.wan_mtu)
    elif facts.wan_mtu is not None:
        path, source = facts.wan_mtu, "wan"
    else:
        return PeerMtu(configured, configured, None, "configured")
    fits = max(MIN_TUNNEL_MTU, (path - WG_OVERHEAD_IPV4) // WG_PADDING * WG_PADDING)
    if configured <= fits:
        return PeerMtu(configured, configured, path, source)
    warning = (
        f"the configured tunnel MTU {configured} does not fit the path ({path} bytes, by {source}): "
        f"using {fits}; set the connection's mtu to {fits} or less to silence this"
    )
    if path - WG_OVERHEAD_IPV4 < MIN_TUNNEL_MTU:
        warning = (
            f"the path carries only {path} bytes, too small for a {MIN_TUNNEL_MTU}-byte tunnel: "
            f"packets over {path - WG_OVERHEAD_IPV4} bytes will be fragmented on the WAN; "
            "raise the WAN MTU to at least 1340"
        )
    return PeerMtu(fits, configured, path, source, warning)
