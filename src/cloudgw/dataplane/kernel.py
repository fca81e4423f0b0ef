"""The real data plane: the Linux kernel of the namespace this process runs in."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from cloudgw.dataplane import nft, wgkernel
from cloudgw.dataplane.base import Observation
from cloudgw.dataplane.conntrack import Session, nat_sessions
from cloudgw.dataplane.kernelstate import (
    EGRESS_TABLE,
    MAIN_TABLE,
    BridgeArp,
    FdbEntry,
    KernelState,
    LanAddress,
    NftRuleset,
    PolicyRule,
    ProxyNeighbour,
    Route,
    TunnelLink,
    VxlanLink,
    WgDevice,
    WgPeer,
)
from cloudgw.dataplane.netlink import Netlink, bridging, read_sysctl, write_sysctl
from cloudgw.dataplane.netlink.bulk import BulkNetlink, Request
from cloudgw.dataplane.nftrender import delete_table_batch, ruleset_from_listing
from cloudgw.dataplane.plan import Action
from cloudgw.dataplane.wgkernel import KernelWireguard
from cloudgw.dataplane.wireguard import (
    DEFAULT_SOCKET_DIR,
    PeerStats,
    WireguardGo,
    device_lines,
    parse_device,
    peer_lines,
    remove_peer_lines,
)
from cloudgw.errors import DataplaneError, MissingDependency, PartialApply
from cloudgw.logs import log_event
from cloudgw.model.defaults import TUNNEL_MTU
from cloudgw.model.document import OWNED_PREFIX

log = logging.getLogger("cloudgw.dataplane")


WG_BACKENDS = ("auto", "kernel", "wireguard-go")


def choose_backend(wanted: str, kernel_has_wireguard: Callable[[], bool]) -> str:
    """auto: the kernel module where it loads (faster than any userspace build), else wireguard-go."""
    if wanted not in WG_BACKENDS:
        raise MissingDependency(f"unknown WireGuard backend '{wanted}': choose one of {', '.join(WG_BACKENDS)}")
    if wanted == "wireguard-go":
        return wanted
    if kernel_has_wireguard():
        return "kernel"
    if wanted == "kernel":
        raise MissingDependency(
            "this kernel has no WireGuard module (modprobe wireguard failed): install it, or use wg_backend auto"
        )
    return "wireguard-go"


class KernelDataplane:
    def __init__(
        self,
        socket_dir: str = DEFAULT_SOCKET_DIR,
        run_dir: str | Path = "/run/cloudgw",
        wg_gogc: int = 0,
        wg_backend: str = "wireguard-go",
        kernel_has_wireguard: Callable[[], bool] = wgkernel.available,
    ) -> None:
        self.socket_dir = socket_dir
        self.run_dir = Path(run_dir)
        self.wg_gogc = wg_gogc  # GOGC of the wireguard-go processes it starts (0: Go's default)
        self.kernel_wg = choose_backend(wg_backend, kernel_has_wireguard) == "kernel"

    def wireguard(self, ifname: str) -> WireguardGo | KernelWireguard:
        if self.kernel_wg:
            return KernelWireguard(ifname)
        return WireguardGo(ifname, socket_dir=self.socket_dir, run_dir=self.run_dir, gogc=self.wg_gogc)

    def observe(self, sysctl_keys: Iterable[str] = ()) -> Observation:
        links: dict[str, TunnelLink] = {}
        devices: dict[str, WgDevice] = {}
        peers: dict[tuple[str, str], WgPeer] = {}
        stats: list[PeerStats] = []
        with Netlink() as netlink:
            all_links = netlink.links()
            interfaces = {link.name: link.mac for link in all_links}
            addresses: dict[str, list[str]] = {}
            for name, address in netlink.addresses():
                addresses.setdefault(name, []).append(str(address))
            for link in all_links:
                if not link.name.startswith(OWNED_PREFIX) or link.kind == "vxlan":
                    continue
                links[link.name] = TunnelLink(link.name, link.mtu, link.up)
                wireguard = self.wireguard(link.name)
                if wireguard.present():
                    try:
                        device, wg_peers, wg_stats = parse_device(wireguard.uapi().get(), link.name)
                    except DataplaneError:
                        continue  # a stale socket: treated as "no device", the plan restarts it
                    if device is not None:
                        devices[link.name] = device
                    peers.update({(peer.link, peer.public_key): peer for peer in wg_peers})
                    stats.extend(wg_stats)
            rules = frozenset(netlink.rules())
            owned_addresses = frozenset(netlink.owned_addresses())
            vxlans = bridging.vxlans(netlink, all_links)
            fdb = frozenset(bridging.fdb(netlink, sorted(vxlans)))
            # only where a VXLAN port is: a plan deletes ARP entries before their port, and a big L3
            # gateway's neighbour table (every local VM) is not dumped on every observe
            arp = frozenset(bridging.bridge_arp(netlink, sorted({vx.bridge for vx in vxlans.values()})))
        with BulkNetlink({link.name: link.index for link in all_links}) as bulk:
            routes = {route.key: route for table in (MAIN_TABLE, EGRESS_TABLE) for route in bulk.routes(table)}
            neighbours = frozenset(bulk.proxy_neighbours())
        sysctls = {}
        for key in sysctl_keys:
            value = read_sysctl(key)
            if value is not None:
                sysctls[key] = value
        ruleset, counters = None, {}
        listing = nft.list_table()
        if listing is not None:
            ruleset, counters = ruleset_from_listing(listing)
        state = KernelState(
            links=links,
            devices=devices,
            peers=peers,
            sysctls=sysctls,
            neighbours=neighbours,
            addresses=owned_addresses,
            routes=routes,
            rules=rules,
            nft=ruleset,
            vxlans=vxlans,
            fdb=fdb,
            arp=arp,
        )
        return Observation(state=state, interfaces=interfaces, addresses=addresses, peer_stats=stats, counters=counters)

    def link_mtu(self, name: str) -> int | None:
        with Netlink() as netlink:
            link = netlink.link(name)
        return link.mtu if link is not None else None

    def nat_sessions(self, limit: int = 100) -> tuple[int, list[Session]]:
        return nat_sessions(limit)

    def peer_stats(self) -> list[PeerStats]:
        """WireGuard peer statistics only (cheap: one UAPI read per tunnel), for heartbeats."""
        stats: list[PeerStats] = []
        with Netlink() as netlink:
            names = [link.name for link in netlink.links() if link.name.startswith(OWNED_PREFIX)]
        for name in names:
            wireguard = self.wireguard(name)
            if wireguard.present():
                try:
                    stats.extend(parse_device(wireguard.uapi().get(), name)[2])
                except DataplaneError:
                    continue
        return stats

    def apply(self, actions: list[Action]) -> None:
        """In plan order; consecutive peer actions go to WireGuard as one transaction, consecutive
        route and neighbour actions to the kernel as pipelined netlink batches. A peer WireGuard
        refuses is skipped (the rest is applied) and reported at the end as PartialApply."""
        skipped: dict[str, str] = {}
        with Netlink() as netlink:
            index = 0
            while index < len(actions):
                kind = actions[index].kind
                end = index + 1
                if kind in ("peer", "route", "neighbour"):
                    while end < len(actions) and actions[end].kind == kind:
                        end += 1
                if kind == "peer":
                    skipped.update(self._apply_peers(actions[index:end]))
                elif kind in ("route", "neighbour"):
                    self._apply_bulk(netlink, actions[index:end])
                elif kind in ("vxlan", "fdb", "arp"):
                    # an L2 network that cannot be set up (its LAN is no bridge) must not keep the
                    # rest of the document from the kernel: reported at the end, like a refused peer
                    try:
                        self._apply_one(netlink, actions[index])
                    except DataplaneError as exc:
                        skipped[f"{kind} {actions[index].key}"] = str(exc)
                else:
                    self._apply_one(netlink, actions[index])
                index = end
        if skipped:
            raise PartialApply(skipped)

    def _apply_bulk(self, netlink: Netlink, actions: list[Action]) -> None:
        with BulkNetlink({link.name: link.index for link in netlink.links()}) as bulk:
            requests: list[Request | None] = []
            for action in actions:
                if action.kind == "route":
                    route = action.observed if action.op == "delete" else action.desired
                    assert isinstance(route, Route)
                    requests.append(bulk.delete_route(route) if action.op == "delete" else bulk.replace_route(route))
                else:
                    neighbour = action.observed if action.op == "delete" else action.desired
                    assert isinstance(neighbour, ProxyNeighbour)
                    requests.append(
                        bulk.delete_proxy_neighbour(neighbour)
                        if action.op == "delete"
                        else bulk.add_proxy_neighbour(neighbour)
                    )
            bulk.run(requests)

    def _apply_one(self, netlink: Netlink, action: Action) -> None:
        kind, op = action.kind, action.op
        if kind == "link":
            if op == "delete":
                assert isinstance(action.observed, TunnelLink)
                self._remove_link(netlink, action.observed.name)
            else:
                assert isinstance(action.desired, TunnelLink)
                self._ensure_link(netlink, action.desired)
        elif kind == "device":
            if op != "delete":
                assert isinstance(action.desired, WgDevice)
                wireguard = self.wireguard(action.desired.link)
                if not wireguard.running():
                    self._ensure_link(netlink, TunnelLink(action.desired.link, TUNNEL_MTU, True))
                wireguard.uapi().set(device_lines(action.desired))
        elif kind == "nft":
            if op == "delete":
                nft.apply_batch(delete_table_batch()["nftables"])
            else:
                assert isinstance(action.desired, NftRuleset)
                nft.apply_batch(action.desired.commands)
        elif kind == "sysctl":
            assert isinstance(action.desired, str)
            write_sysctl(action.key, action.desired)
        elif kind == "rule":
            self._apply_rule(netlink, action)
        elif kind == "vxlan":
            if op != "add":  # a changed VXLAN port is rebuilt (its entries follow in this plan)
                assert isinstance(action.observed, VxlanLink)
                netlink.delete_link(action.observed.name)
            if op != "delete":
                assert isinstance(action.desired, VxlanLink)
                bridging.add_vxlan(netlink, action.desired)
        elif kind == "fdb":
            entry = action.observed if op == "delete" else action.desired
            assert isinstance(entry, FdbEntry)
            bridging.apply_fdb(netlink, op, entry)
        elif kind == "arp":
            arp = action.observed if op == "delete" else action.desired
            assert isinstance(arp, BridgeArp)
            bridging.apply_arp(netlink, op, arp)
        elif kind == "address":
            if op == "delete":
                assert isinstance(action.observed, LanAddress)
                netlink.delete_address(action.observed)
            else:
                assert isinstance(action.desired, LanAddress)
                netlink.add_owned_address(action.desired)

    def _apply_rule(self, netlink: Netlink, action: Action) -> None:
        if action.op == "delete":
            assert isinstance(action.observed, PolicyRule)
            netlink.delete_rule(action.observed)
        else:
            assert isinstance(action.desired, PolicyRule)
            netlink.add_rule(action.desired)

    def _ensure_link(self, netlink: Netlink, link: TunnelLink) -> None:
        wireguard = self.wireguard(link.name)
        if not wireguard.running():
            if netlink.link(link.name) is not None:
                netlink.delete_link(link.name)  # a tun left by a dead wireguard-go
            pid = wireguard.start()
            log_event(log, "wireguard.started", link=link.name, pid=pid)
        netlink.set_link(link.name, mtu=link.mtu, up=link.up)

    def _remove_link(self, netlink: Netlink, name: str) -> None:
        self.wireguard(name).stop()
        netlink.delete_link(name)

    def _apply_peers(self, actions: list[Action]) -> dict[str, str]:
        """All peers of a link in one UAPI transaction; if WireGuard refuses it, one by one, so one
        bad peer cannot keep the others from being configured. Returns the refused ones."""
        by_link: dict[str, list[tuple[str, list[str]]]] = {}
        skipped: dict[str, str] = {}
        for action in actions:
            peer = action.observed if action.op == "delete" else action.desired
            assert isinstance(peer, WgPeer)
            try:
                lines = remove_peer_lines(peer.public_key) if action.op == "delete" else peer_lines(peer)
            except DataplaneError as exc:
                skipped[peer.public_key] = str(exc)
                continue
            by_link.setdefault(peer.link, []).append((peer.public_key, lines))
        for link, items in by_link.items():
            uapi = self.wireguard(link).uapi()
            try:
                uapi.set([line for _key, lines in items for line in lines])
                continue
            except DataplaneError as exc:
                if len(items) == 1:
                    skipped[items[0][0]] = str(exc)
                    continue
            for key, lines in items:
                try:
                    uapi.set(lines)
                except DataplaneError as exc:
                    skipped[key] = str(exc)
        for key, why in skipped.items():
            log_event(log, "peer.skipped", logging.WARNING, peer=key, error=why)
        return skipped

    def teardown(self) -> None:
        """Remove everything cloudgw owns in this namespace (agent uninstall, tests)."""
        observation = self.observe()
        from cloudgw.dataplane.plan import plan

        self.apply(plan(observation.state, KernelState()))
