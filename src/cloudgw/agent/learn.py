"""Learn which endpoints (IP, MAC) live on the gateway's LAN.

Three sources, each cheap:
- ARP frames seen on the LAN interface (an AF_PACKET socket): every VM ARPs before it talks;
- the kernel's neighbour events (netlink): what the gateway itself resolved;
- ARP probes of the local pool at a modest rate (default 10 addresses a second), so a VM that has
  sent nothing yet is still found.
An endpoint not seen for `expire_after` seconds is forgotten. Only addresses in the local site's pools
are learned: anything else on the LAN is not ours to announce.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from ipaddress import IPv4Address
from typing import Any

from cloudgw.dataplane.netlink import Netlink, watch_neighbours
from cloudgw.logs import log_event
from cloudgw.model.addr import AddressRange

log = logging.getLogger("cloudgw.learn")

ETH_P_ARP = 0x0806
ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
PORT_REFRESH_S = 0.5  # how often a bridged LAN's ports are looked at again
PACKET_OUTGOING = 4
BROADCAST = b"\xff" * 6


def attach_arp_filter(sock: socket.socket) -> None:
    """A classic BPF program keeping ARP frames only: `ldh [12]; jeq #0x806, ok, drop`."""
    program = [(0x28, 0, 0, 12), (0x15, 0, 1, ETH_P_ARP), (0x06, 0, 0, 0xFFFF), (0x06, 0, 0, 0)]
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *step) for step in program))
    # the kernel copies the program during the call, while `code` is alive
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", len(program), ctypes.addressof(code)))


@dataclass(frozen=True)
class LearnTarget:
    network: str
    interface: str
    address: IPv4Address | None  # the gateway's own LAN address: source of probes (None = no probing)
    pools: tuple[AddressRange, ...]
    # an L2 network (docs/l2.md): the interface is a bridge with a VXLAN port, so what reaches the
    # bridge itself may come from another site. Only ARP received on its other ports is learned (and
    # then also addresses of other bridging sites' pools: a VM that moved here); the bridge device's
    # own socket only sends probes, and addresses mapped to other sites are not probed (the bridge
    # would answer for them itself)
    bridged: bool = False
    movable: tuple[AddressRange, ...] = ()
    remote: frozenset[int] = frozenset()

    def wants(self, ip: IPv4Address, on_port: bool = False) -> bool:
        if ip == self.address:
            return False
        if any(ip in pool for pool in self.pools):
            return not self.bridged or on_port
        return on_port and any(ip in pool for pool in self.movable)


@dataclass
class LearnedEndpoint:
    network: str
    ip: str
    mac: str
    first_seen: float
    last_seen: float
    via: str  # "arp", "neighbour" or "probe"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class EndpointTable:
    """Thread-safe table of learned endpoints; calls on_change(endpoint, event) on new/moved/expired."""

    def __init__(self, on_change: Callable[[LearnedEndpoint, str], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], LearnedEndpoint] = {}
        self.on_change = on_change
        self.version = 0  # bumped on every add, move or expiry: cheap "did anything change"

    def seen(self, network: str, ip: IPv4Address, mac: str, via: str, now: float) -> None:
        key = (network, str(ip))
        event = None
        with self._lock:
            current = self._items.get(key)
            if current is None:
                current = LearnedEndpoint(network, str(ip), mac, now, now, via)
                self._items[key] = current
                event = "learned"
            else:
                if current.mac != mac:
                    current.mac = mac
                    event = "moved"
                current.last_seen = now
                current.via = via
            if event:
                self.version += 1
        if event:
            log_event(log, f"endpoint.{event}", network=network, ip=ip, mac=mac, via=via)
            if self.on_change:
                self.on_change(current, event)

    def forget(self, network: str, addresses: frozenset[int]) -> list[LearnedEndpoint]:
        """Drop these addresses of a network (the mapping places them at another site now)."""
        if not addresses:
            return []
        return self._drop(lambda e: e.network == network and int(IPv4Address(e.ip)) in addresses, "moved_away")

    def expire(self, now: float, max_age: float) -> list[LearnedEndpoint]:
        return self._drop(lambda item: now - item.last_seen > max_age, "expired")

    def _drop(self, which: Callable[[LearnedEndpoint], bool], event: str) -> list[LearnedEndpoint]:
        """Remove the endpoints `which` selects; each is withdrawn (on_change "expired")."""
        with self._lock:
            gone = [item for item in self._items.values() if which(item)]
            for item in gone:
                del self._items[(item.network, item.ip)]
            if gone:
                self.version += 1
        for item in gone:
            log_event(log, f"endpoint.{event}", network=item.network, ip=item.ip)
            if self.on_change:
                self.on_change(item, "expired")
        return gone

    def restore(self, items: Any, now: float, max_age: float) -> int:
        """Load endpoints saved by an earlier run (see `dump`), keeping those seen within max_age.

        An agent restart must not withdraw what the gateway announced: the restored endpoints are
        announced again at once and expire as usual if no VM answers for them any more. Anything
        malformed is skipped, never fatal: the learner finds the VMs again anyway."""
        restored = 0
        for item in items if isinstance(items, list) else []:
            try:
                endpoint = LearnedEndpoint(
                    network=str(item["network"]),
                    ip=str(IPv4Address(item["ip"])),
                    mac=str(item["mac"]),
                    first_seen=float(item["first_seen"]),
                    last_seen=float(item["last_seen"]),
                    via="restored",
                )
            except (KeyError, TypeError, ValueError):
                continue
            if not 0 <= now - endpoint.last_seen <= max_age:
                continue
            with self._lock:
                if (endpoint.network, endpoint.ip) not in self._items:
                    self._items[(endpoint.network, endpoint.ip)] = endpoint
                    self.version += 1
                    restored += 1
        return restored

    def dump(self) -> list[dict[str, Any]]:
        return [endpoint.as_dict() for endpoint in self.snapshot()]

    def snapshot(self) -> list[LearnedEndpoint]:
        with self._lock:
            return [
                LearnedEndpoint(**asdict(item))
                for item in sorted(self._items.values(), key=lambda e: (e.network, IPv4Address(e.ip)))
            ]


def parse_arp(frame: bytes) -> tuple[int, str, IPv4Address] | None:
    """(operation, sender MAC, sender IP) of an Ethernet ARP frame for IPv4, else None."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x06":
        return None
    htype, ptype, hlen, plen, oper = struct.unpack("!HHBBH", frame[14:22])
    if htype != 1 or ptype != 0x0800 or hlen != 6 or plen != 4:
        return None
    mac = ":".join(f"{b:02x}" for b in frame[22:28])
    return oper, mac, IPv4Address(frame[28:32])


def build_arp_request(sender_mac: str, sender_ip: IPv4Address, target_ip: IPv4Address) -> bytes:
    mac = bytes.fromhex(sender_mac.replace(":", ""))
    ethernet = BROADCAST + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + sender_ip.packed + b"\x00" * 6 + target_ip.packed
    return ethernet + arp


def build_garp(sender_mac: str, address: IPv4Address) -> bytes:
    """A gratuitous ARP: "address is at sender_mac". Hosts that are waiting to resolve it take it."""
    mac = bytes.fromhex(sender_mac.replace(":", ""))
    ethernet = BROADCAST + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + address.packed + b"\x00" * 6 + address.packed
    return ethernet + arp


def probe_order(targets: list[LearnTarget]) -> Iterator[tuple[LearnTarget, IPv4Address]]:
    """Every local pool address once, network by network (one probe cycle)."""
    for target in targets:
        if target.address is None:
            continue
        for pool in target.pools:
            for ip in pool.addresses():
                if (target.wants(ip) or target.bridged) and int(ip) not in target.remote and ip != target.address:
                    yield target, ip


class Learner:
    def __init__(
        self,
        table: EndpointTable,
        probe_rate: float = 10.0,
        expire_after: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self.probe_rate = probe_rate
        self.expire_after = expire_after
        self.clock = clock
        self._targets: list[LearnTarget] = []
        self._macs: dict[str, str] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: dict[str, socket.socket] = {}
        self._port_of: dict[str, str] = {}  # a bridged target's LAN port -> the bridge
        self._refreshed = 0.0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watch_task: asyncio.Task[None] | None = None

    # configuration -----------------------------------------------------------------------------
    def update(self, targets: list[LearnTarget]) -> None:
        with self._lock:
            if targets == self._targets:
                return
            self._targets = list(targets)
            self._refresh_sockets()

    def _refresh_sockets(self) -> None:
        """Sockets for the targets' interfaces and, of bridged ones, their LAN ports (caller locks)."""
        ports: dict[str, str] = {}
        with Netlink() as netlink:
            links = netlink.links()
            for target in self._targets:
                if target.bridged:  # its LAN side: every port but cloudgw's own (the VXLAN port)
                    for port in netlink.ports(target.interface):
                        if not port.startswith("cgw"):
                            ports[port] = target.interface
        wanted = {t.interface for t in self._targets} | set(ports)
        for name in list(self._sockets):
            if name not in wanted:
                self._sockets.pop(name).close()
        self._port_of = ports
        macs = {link.name: link.mac for link in links}
        for name in wanted - self._sockets.keys():
            if name not in macs:
                continue
            try:
                if name in ports:  # a bridge port: its frames reach only ETH_P_ALL taps
                    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                    attach_arp_filter(sock)
                    sock.bind((name, ETH_P_ALL))
                else:
                    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
                    sock.bind((name, ETH_P_ARP))
            except OSError as exc:  # the port went away meanwhile: the next refresh tries again
                log_event(log, "learn.socket_failed", logging.DEBUG, interface=name, error=exc)
                continue
            sock.setblocking(False)
            self._sockets[name] = sock
            self._macs[name] = macs[name]

    def garp(self, interface: str, addresses: list[IPv4Address]) -> int:
        """Announce remote addresses the gateway now answers for, so local VMs that already tried
        to reach them do not wait for their ARP retry timer."""
        with self._lock:
            sock, mac = self._sockets.get(interface), self._macs.get(interface)
        if sock is None or not mac:
            return 0
        sent = 0
        for address in addresses:
            try:
                sock.send(build_garp(mac, address))
                sent += 1
            except OSError as exc:
                log_event(log, "garp.failed", logging.DEBUG, interface=interface, error=exc)
        return sent

    def _target_for(self, interface: str, ip: IPv4Address) -> LearnTarget | None:
        bridge = self._port_of.get(interface)
        for target in self._targets:
            if bridge is not None and target.interface == bridge and target.wants(ip, on_port=True):
                return target
            if bridge is None and target.interface == interface and target.wants(ip):
                return target
        return None

    # threads -----------------------------------------------------------------------------------
    def start(self) -> None:
        for fn, name in ((self._listen_arp, "learn-arp"), (self._probe, "learn-probe"), (self._watch, "learn-neigh")):
            thread = threading.Thread(target=fn, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        if self._loop is not None and self._watch_task is not None:
            self._loop.call_soon_threadsafe(self._watch_task.cancel)
        for thread in self._threads:
            thread.join(timeout=3)
        with self._lock:
            for sock in self._sockets.values():
                sock.close()
            self._sockets.clear()

    def _listen_arp(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if any(t.bridged for t in self._targets) and time.monotonic() - self._refreshed > PORT_REFRESH_S:
                    self._refreshed = time.monotonic()
                    try:
                        self._refresh_sockets()  # VMs' ports come and go (a VM that moved here)
                    except Exception as exc:  # never let a failed refresh stop learning
                        log_event(log, "learn.refresh_failed", logging.WARNING, error=exc)
                sockets = dict(self._sockets)
            if not sockets:
                self._stop.wait(0.5)
                continue
            try:
                ready, _, _ = select.select(list(sockets.values()), [], [], 0.5)
            except (OSError, ValueError):
                continue  # a socket closed by update(); take the new set
            for sock in ready:
                name = next((n for n, s in sockets.items() if s is sock), None)
                try:
                    frame, address = sock.recvfrom(2048)
                except OSError:
                    continue
                if name is None or address[2] == PACKET_OUTGOING:
                    continue
                parsed = parse_arp(frame)
                if parsed is None:
                    continue
                oper, mac, ip = parsed
                target = self._target_for(name, ip)
                if target is not None and int(ip) != 0:
                    self.table.seen(target.network, ip, mac, "probe" if oper == 2 else "arp", self.clock())

    def _probe(self) -> None:
        interval = 1.0 / self.probe_rate if self.probe_rate > 0 else 0
        while not self._stop.is_set():
            if interval == 0:
                self._stop.wait(1.0)
                continue
            with self._lock:
                targets = list(self._targets)
            sent = 0
            for target, ip in probe_order(targets):
                if self._stop.is_set():
                    return
                with self._lock:
                    sock = self._sockets.get(target.interface)
                    mac = self._macs.get(target.interface)
                    changed = targets != self._targets
                if changed:
                    break
                if sock is not None and mac and target.address is not None:
                    try:
                        sock.send(build_arp_request(mac, target.address, ip))
                        sent += 1
                    except OSError as exc:
                        log_event(log, "probe.failed", logging.DEBUG, interface=target.interface, error=exc)
                self._stop.wait(interval)
            self.table.expire(self.clock(), self.expire_after)
            if sent == 0:
                self._stop.wait(1.0)

    def _watch(self) -> None:
        def on_neighbour(ip: IPv4Address, mac: str, ifindex: int) -> None:
            with self._lock:
                targets = list(self._targets)
            try:
                name = socket.if_indextoname(ifindex)
            except OSError:
                return
            for target in targets:
                if target.interface == name and target.wants(ip):
                    self.table.seen(target.network, ip, mac, "neighbour", self.clock())

        self._loop = asyncio.new_event_loop()
        self._watch_task = self._loop.create_task(watch_neighbours(on_neighbour))
        try:
            self._loop.run_until_complete(self._watch_task)
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            log_event(log, "learn.neighbour_watch_failed", logging.WARNING, error=exc)
        finally:
            self._loop.close()
