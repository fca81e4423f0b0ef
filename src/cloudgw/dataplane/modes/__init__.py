"""Data-plane modes: how one network is carried between sites (the backend boundary, as flannel has).

A mode turns one network of a gateway's document into kernel objects; `render.py` does what every
mode shares (the WireGuard device and peers, sysctls, Internet egress, the filter's frame) and asks
the network's mode for the rest. Each mode owns its kernel object kinds (L3: host routes and
proxy-ARP entries; L2: a VXLAN port of the LAN bridge, forwarding and bridge-ARP entries, its own
filter rules). A new mode is a new module here with a `render_network` and an entry in MODES (and,
if it needs kernel objects no mode has yet, their kind in kernelstate.py and kernel.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

from cloudgw.dataplane.kernelstate import BridgeArp, FdbEntry, ProxyNeighbour, Route, VxlanLink
from cloudgw.model.document import GatewayDocument, NetworkSpec


@dataclass(frozen=True)
class Context:
    """What every mode needs to know about the gateway beyond the one network it renders."""

    doc: GatewayDocument
    tunnel: str  # the WireGuard device
    mtus: Mapping[str, int | None]  # per peer name: its routes' MTU (None: the device's)
    site_of_peer: Mapping[str, str]  # per peer site: its active peer's name
    answers_arp: bool  # the active gateway of a pair (or the only one) answers ARP on the LAN

    @property
    def peer_sites(self) -> set[str]:
        return set(self.site_of_peer)


@dataclass
class Desired:
    """The kernel objects the modes add to, network after network."""

    routes: dict[tuple[int, IPv4Network], Route] = field(default_factory=dict)
    neighbours: set[ProxyNeighbour] = field(default_factory=set)
    vxlans: dict[str, VxlanLink] = field(default_factory=dict)
    fdb: set[FdbEntry] = field(default_factory=set)
    arp: set[BridgeArp] = field(default_factory=set)
    nft: list[dict[str, Any]] = field(default_factory=list)  # extra filter rules (nftrender.rule)

    def route(self, route: Route) -> None:
        self.routes[route.key] = route


RenderNetwork = Callable[[Context, NetworkSpec, Desired], None]


def mode_of(net: NetworkSpec) -> RenderNetwork:
    from cloudgw.dataplane.modes import l2, l3

    modes: dict[str, RenderNetwork] = {"l3": l3.render_network, "l2": l2.render_network}
    return modes[net.mode]
