"""The HA pair at work: hellos on the LAN and the WAN, the controller's lease, role notices through
the tunnel, and the document as this gateway's role makes it (docs/ha.md; the rule is in ha.py).

Two threads: one sends hellos every `interval_ms` and reads what arrives (hellos from partners,
role notices from peers through the tunnel); one talks to the controller (claims, renewals,
step-downs), so a slow controller never delays a hello.

Role notices: a new active gateway sends "site S is mine from epoch E" to every peer's LAN address
through the tunnel at once (which also starts any missing WireGuard handshake), then every two
seconds. Only WireGuard can put a packet on the tunnel device, and it only accepts a source address
from the peer whose allowed IPs hold it, so a notice that arrives on the tunnel from a peer's own LAN
address was sent by that peer: the receiving agent moves the site's addresses to it at once,
without waiting for the controller (which may be down).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cloudgw.agent.ha import Hello, PairState, Want, decode_hello, encode_hello, pair_key
from cloudgw.logs import log_event
from cloudgw.model.document import GatewayDocument, PeerSpec

log = logging.getLogger("cloudgw.agent")
NOTICE_MAX_BYTES = 300
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux's value; Python names it from 3.12 on
LIVE_SESSION_S = 180.0  # WireGuard drops a session this old: a peer with a newer handshake is "healthy"
NOTICE_BURST_S = (0.0, 0.05, 0.2, 0.5, 1.0)  # after a takeover; then every NOTICE_EVERY_S
NOTICE_EVERY_S = 2.0
PROBE_EVERY_S = 0.5  # a probe through the tunnel to every peer's agent, answered by an echo
PROBE_WINDOW_S = 1.6  # a peer that echoed within this is reachable through its tunnel now
IDLE_S = 1.0  # how often the threads look again on a gateway that is not (yet) in a pair


@dataclass(frozen=True)
class RoleReply:
    granted: bool
    role: str
    active: str | None
    epoch: int
    reason: str = ""


class Unreachable(Exception):
    """The controller did not answer (the pair then decides alone)."""


class RoleClient(Protocol):
    def request_role(self, role: str, epoch: int, reason: str) -> RoleReply: ...


Health = Callable[[], tuple[int, int]]  # (peers with a live session, peers)


class Pair:
    def __init__(
        self,
        *,
        private_key: str,
        controller: RoleClient | None,
        health: Health,
        on_change: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._private_key = private_key
        self.controller = controller
        self.health = health
        self.on_change = on_change
        self.clock, self.wall = clock, wall
        self.doc: GatewayDocument | None = None
        self.state: PairState | None = None
        self.reason = "started: listening for partners"
        self.since = wall()
        self.changes: list[dict[str, Any]] = []  # the last role changes, newest last
        self.overrides: dict[str, tuple[str, int]] = {}  # peer site -> (active gateway, epoch) from notices
        self._keys: dict[str, bytes] = {}
        self._sock: socket.socket | None = None
        self._port: int | None = None
        self._boot = int.from_bytes(os.urandom(6), "big")
        self._seq = 0
        self._wants: queue.Queue[Want] = queue.Queue()
        self._pending: Want | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._notice_due: list[float] = []
        self._health_cache: tuple[float, tuple[int, int]] = (-1e9, (0, 0))
        self._echoed: dict[str, float] = {}  # peer name -> when it last answered a probe through the tunnel
        self._probe_seq = 0
        self._next_probe = 0.0
        self._next_hello = 0.0  # the hello thread's next pass (far off while not in a pair)
        self._overlay_cache: tuple[int, Any, GatewayDocument] | None = None
        self._version = 0  # bumped by every change of role or override
        self.reported = 0  # bumped by every change worth a new status file (a role, a refusal)

    # configuration ------------------------------------------------------------------------------
    def configure(self, doc: GatewayDocument) -> None:
        """A new document: partners, timing, addresses. Creates the pair state on first use."""
        with self._lock:
            gw = doc.gateway
            partners = {p.name: p.priority for p in gw.partners}
            dead = gw.ha.dead_ms / 1000
            now = self.clock()
            if self.state is None or self.state.name != gw.name:
                self.state = PairState(gw.name, gw.priority, partners, dead, gw.ha.failback, now)
            else:
                self.state.partners, self.state.priority = partners, gw.priority
                self.state.dead_s, self.state.failback = dead, gw.ha.failback
            self.state.seen_epoch = max(self.state.seen_epoch, gw.epoch)  # this site's (each site has its own)
            for partner in gw.partners:
                if partner.name not in self._keys:
                    self._keys[partner.name] = pair_key(self._private_key, partner.public_key, (gw.name, partner.name))
            if gw.partners and not self.enabled:
                self._next_hello = 0.0  # now in a pair: hellos start at the hello thread's next look
            self.doc = doc
            # every gateway answers its peers' probes and hears their role notices: the port is open
            # wherever there is a peer or a partner
            needed = bool(gw.partners) or bool(doc.peers)
            if needed and self._port != gw.ha_port:
                try:
                    self._open(gw.ha_port)
                except OSError as exc:  # the data plane works without: only the pair's watch is blind
                    log_event(log, "ha.port_unavailable", logging.ERROR, port=gw.ha_port, error=exc.strerror)

    @property
    def enabled(self) -> bool:
        return self.doc is not None and bool(self.doc.gateway.partners)

    @property
    def role(self) -> str:
        if not self.enabled or self.state is None:
            return "active"
        return self.state.role

    def _open(self, port: int) -> None:
        if self._sock is not None:
            self._sock.close()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        sock.bind(("0.0.0.0", port))
        sock.setblocking(False)
        self._sock, self._port = sock, port

    # the document as the role makes it ----------------------------------------------------------
    def overlay(self, doc: GatewayDocument) -> GatewayDocument:
        """The document with this gateway's own role, and the peers' roles that notices brought
        (newer than the document's). Cheap: only the gateway and the peer list are copied."""
        with self._lock:
            cached = self._overlay_cache
            if cached is not None and cached[0] == self._version and cached[1] is doc:
                return cached[2]
            role = self.role
            gateway = doc.gateway
            if gateway.role != role:
                gateway = gateway.model_copy(update={"role": role})
            peers = doc.peers
            for site, (active, epoch) in list(self.overrides.items()):
                documented = max((p.epoch for p in peers if p.site == site), default=0)
                if epoch <= documented:
                    del self.overrides[site]  # the controller knows it now
                    continue
                peers = [
                    p.model_copy(update={"role": "active" if p.name == active else "standby", "epoch": epoch})
                    if p.site == site
                    else p
                    for p in peers
                ]
            result = (
                doc
                if gateway is doc.gateway and peers is doc.peers
                else doc.model_copy(update={"gateway": gateway, "peers": peers})
            )
            self._overlay_cache = (self._version, doc, result)
            return result

    # threads ------------------------------------------------------------------------------------
    def start(self) -> None:
        for target, name in ((self._hello_loop, "cgw-ha-hello"), (self._lease_loop, "cgw-ha-lease")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wants.put(Want("", ""))
        for thread in self._threads:
            thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()

    def _interval(self) -> float:
        return self.doc.gateway.ha.interval_ms / 1000 if self.doc is not None else 0.2

    def _hello_loop(self) -> None:
        self._next_hello = self.clock()
        while not self._stop.is_set():
            now = self.clock()
            try:
                if now >= self._next_hello:
                    # not in a pair: nothing to send; look again soon while no document has come yet
                    idle = 0.1 if self.doc is None else IDLE_S
                    self._next_hello = now + (self._interval() if self.enabled else idle)
                    self._send_hellos()
                    self._decide()
                self._send_notices()
                self._send_probes()
            except Exception as exc:  # never let one bad pass end the pair's watch
                log_event(log, "ha.error", logging.WARNING, error=repr(exc))
            wake = min(self._next_hello, self._next_notice(), self._next_probe if self.enabled else float("inf"))
            self._receive(max(0.0, wake - self.clock()))

    def _healthy(self) -> tuple[int, int]:
        probed = self.tunnel_health()
        if probed is not None:
            return probed
        now = self.clock()
        at, value = self._health_cache
        if now - at >= 1.0:
            try:
                value = self.health()
            except Exception:  # the data plane may be starting or gone: no live tunnels then
                value = (0, 0)
            self._health_cache = (now, value)
        return value

    def _send_hellos(self) -> None:
        doc, state, sock = self.doc, self.state, self._sock
        if doc is None or state is None or sock is None or not doc.gateway.partners:
            return
        healthy, _peers = self._healthy()
        self._seq += 1
        hello = Hello(
            doc.gateway.name, state.role, state.priority, state.epoch, healthy, self._boot, self._seq, self.wall()
        )
        for partner in doc.gateway.partners:
            data = encode_hello(hello, self._keys[partner.name])
            targets = [str(a) for a in partner.lan_addresses]
            if partner.endpoint:
                targets.append(partner.endpoint.rpartition(":")[0])
            for host in targets:
                try:
                    sock.sendto(data, (host, partner.ha_port))
                except OSError:
                    continue  # no route now (a link down): the other path may still work

    def _receive(self, timeout: float) -> None:
        sock = self._sock
        if sock is None:
            self._stop.wait(timeout)
            return
        try:
            ready, _, _ = select.select([sock], [], [], timeout)
        except (OSError, ValueError):
            self._stop.wait(timeout)
            return
        if not ready:
            return
        for _ in range(64):
            try:
                data, ancillary, _flags, (source, port) = sock.recvmsg(1024, socket.CMSG_SPACE(12))
            except (BlockingIOError, OSError):
                return
            ifindex = 0
            for level, kind, payload in ancillary:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(payload) >= 4:
                    ifindex = struct.unpack("i", payload[:4])[0]
            self._handle(data, source, ifindex, port)

    def _handle(self, data: bytes, source: str, ifindex: int, port: int = 0) -> None:
        doc, state = self.doc, self.state
        if doc is None or state is None:
            return
        tunnel = _ifindex(doc.gateway.tunnel.interface)
        if tunnel and ifindex == tunnel:
            self._from_tunnel(data, source, port)
            return
        hello = decode_hello(data, self._keys, self.wall())
        if hello is None:
            return
        path = "lan" if any(source == str(a) for p in doc.gateway.partners for a in p.lan_addresses) else "wan"
        with self._lock:
            state.hear(hello, path, self.clock())

    def _from_tunnel(self, data: bytes, source: str, port: int) -> None:
        """A probe (answer it), an echo (that peer's tunnel works) or a role notice, from a peer."""
        doc, sock = self.doc, self._sock
        if doc is None or len(data) > NOTICE_MAX_BYTES:
            return
        try:
            fields = json.loads(data)
        except ValueError:
            return
        if not isinstance(fields, dict):
            return
        sender = next((p for p in doc.peers if any(source == str(a) for a in p.lan_addresses)), None)
        if sender is None:
            return
        if "probe" in fields and sock is not None and 0 < port < 65536:
            with contextlib.suppress(OSError):
                sock.sendto(json.dumps({"echo": fields["probe"]}).encode()[:64], (source, port))
        elif "echo" in fields:
            self._echoed[sender.name] = self.clock()
        elif "active" in fields:
            self._notice(fields, sender)

    def _send_probes(self) -> None:
        """Every PROBE_EVERY_S: a probe to every peer's agent through the tunnel. The echoes say what
        matters for the pair: whether this gateway can reach its peers now (a WireGuard session can
        look alive for minutes after the WAN is gone)."""
        doc, sock = self.doc, self._sock
        now = self.clock()
        if doc is None or sock is None or now < self._next_probe or not doc.gateway.partners:
            return
        self._next_probe = now + PROBE_EVERY_S
        self._probe_seq += 1
        data = json.dumps({"probe": self._probe_seq}).encode()
        for peer in doc.peers:
            for address in peer.lan_addresses[:1]:
                with contextlib.suppress(OSError):
                    sock.sendto(data, (str(address), peer.ha_port))

    def tunnel_health(self) -> tuple[int, int] | None:
        """(peers that echoed within the window, peers that ever echoed), or None when no peer
        has ever answered (no agent there, e.g. an external router: the WireGuard sessions decide)."""
        doc = self.doc
        if doc is None or not self._echoed:
            return None
        names = {p.name for p in doc.peers}
        now = self.clock()
        known = {name: at for name, at in self._echoed.items() if name in names}
        if not known:
            return None
        return sum(1 for at in known.values() if now - at <= PROBE_WINDOW_S), len(known)

    def _notice(self, fields: dict[str, Any], sender: PeerSpec) -> None:
        """A peer says it is now its site's active gateway (it came through the tunnel from its own
        LAN address: WireGuard vouches for the sender)."""
        doc = self.doc
        try:
            gateway, epoch = str(fields["active"]), int(fields["epoch"])
        except (ValueError, KeyError, TypeError):
            return
        if doc is None or sender.name != gateway or epoch < 0:
            return
        with self._lock:
            current = self.overrides.get(sender.site)
            known = max([current[1] if current else 0, *(p.epoch for p in doc.peers if p.site == sender.site)])
            if epoch <= known:
                return  # what we know already, or older
            self.overrides[sender.site] = (gateway, epoch)
            self._version += 1
        log_event(log, "ha.peer_active", site=sender.site, gateway=gateway, epoch=epoch)
        self.on_change()

    def _next_notice(self) -> float:
        return self._notice_due[0] if self._notice_due else float("inf")

    def _send_notices(self) -> None:
        doc, state, sock = self.doc, self.state, self._sock
        now = self.clock()
        if doc is None or state is None or sock is None or state.role != "active" or not doc.gateway.partners:
            self._notice_due = []
            return
        if not self._notice_due:
            self._notice_due = [now + NOTICE_EVERY_S]
        if now < self._notice_due[0]:
            return
        while self._notice_due and self._notice_due[0] <= now:
            self._notice_due.pop(0)
        if not self._notice_due:
            self._notice_due = [now + NOTICE_EVERY_S]
        data = json.dumps({"active": doc.gateway.name, "site": doc.gateway.site, "epoch": state.epoch}).encode()
        for peer in doc.peers:
            for address in peer.lan_addresses[:1]:
                try:
                    sock.sendto(data, (str(address), peer.ha_port))
                except OSError:
                    continue

    # decisions ----------------------------------------------------------------------------------
    def _decide(self) -> None:
        state = self.state
        if state is None or not self.enabled:
            return
        healthy, peers = self._healthy()
        with self._lock:
            want = state.decide(self.clock(), healthy, peers)
        if want is not None and self._pending is None:
            self._pending = want
            self._wants.put(want)

    def _lease_loop(self) -> None:
        renew_at = 0.0
        while not self._stop.is_set():
            state = self.state
            dead = state.dead_s if state else 1.0
            if not self.enabled:
                timeout = IDLE_S  # no pair here: nothing to renew (a want still wakes it at once)
            elif self.role == "active":
                timeout = max(0.05, renew_at - self.clock())
            else:
                timeout = dead / 2
            try:
                want = self._wants.get(timeout=timeout)
            except queue.Empty:
                want = None
            if self._stop.is_set():
                return
            if state is None:
                continue  # no document yet
            try:
                if want is not None:
                    self._act(want)
                    self._pending = None
                elif self.enabled and state.role == "active" and self.controller is not None:
                    self._renew()
            except Exception as exc:
                self._pending = None
                log_event(log, "ha.error", logging.WARNING, error=repr(exc))
            renew_at = self.clock() + dead / 2

    def _act(self, want: Want) -> None:
        state = self.state
        assert state is not None
        if want.role == "standby":
            self._become("standby", state.epoch, want.reason)
            if self.controller is not None:
                with contextlib.suppress(Unreachable):
                    self.controller.request_role("standby", state.epoch, want.reason)
            return
        if state.role == "active":
            return
        epoch = state.next_epoch()
        if self.controller is None:
            self._become("active", epoch, want.reason + "; no controller configured")
            return
        try:
            reply = self.controller.request_role("active", epoch, want.reason)
        except Unreachable:
            self._become("active", epoch, want.reason + "; controller unreachable: decided alone")
            return
        if reply.granted:
            self._become("active", max(reply.epoch, epoch), want.reason)
        else:
            with self._lock:
                state.seen_epoch = max(state.seen_epoch, reply.epoch)
            if self.reason != reply.reason:
                self.reason = reply.reason
                self.reported += 1
                log_event(log, "ha.claim_refused", reason=reply.reason)
                self.on_change()

    def _renew(self) -> None:
        state = self.state
        assert state is not None and self.controller is not None
        try:
            reply = self.controller.request_role("active", state.epoch, self.reason)
        except Unreachable:
            return  # keep the role: the controller's being down is no reason to stop forwarding
        if not reply.granted:
            state.seen_epoch = max(state.seen_epoch, reply.epoch)
            self._become("standby", state.epoch, f"controller: {reply.reason}")
        elif reply.epoch > state.epoch:
            state.epoch = reply.epoch  # the controller recorded a newer epoch for this gateway's role

    def _become(self, role: str, epoch: int, reason: str) -> None:
        state = self.state
        assert state is not None
        with self._lock:
            changed = state.role != role
            state.role, state.epoch = role, max(state.epoch, epoch)
            self.reason = reason
            self.reported += 1
            if changed:
                self.since = self.wall()
                self.changes = [
                    *self.changes[-19:],
                    {"at": self.since, "role": role, "epoch": state.epoch, "reason": reason},
                ]
            self._version += 1
            if role == "active":
                now = self.clock()
                self._notice_due = [now + d for d in NOTICE_BURST_S]
        if changed:
            log_event(log, "ha.role", role=role, epoch=state.epoch, reason=reason)
            self.on_change()

    def status(self) -> dict[str, Any]:
        state = self.state
        now = self.clock()
        return {
            "enabled": self.enabled,
            "role": self.role,
            "epoch": state.epoch if state else 0,
            "reason": self.reason,
            "since": self.since,
            "partners": [
                {
                    "name": h.hello.gateway,
                    "role": h.hello.role,
                    "heard_s_ago": round(now - h.at, 3),
                    "paths": sorted(h.paths),
                    "healthy": h.hello.healthy,
                }
                for h in (state.heard.values() if state else [])
            ],
            "changes": list(self.changes),
        }


def _ifindex(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return 0


def live_sessions(stats: list[Any], now: float) -> tuple[int, int]:
    """(peers with a WireGuard session younger than 180 s, peers)."""
    live = sum(1 for p in stats if p.last_handshake and now - p.last_handshake < LIVE_SESSION_S)
    return live, len(stats)
