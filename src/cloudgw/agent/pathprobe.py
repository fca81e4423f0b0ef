"""Active path-MTU probes towards each peer gateway (the agent runs them in a thread of their own).

How: ICMP echo requests with DF set (IP_PMTUDISC_PROBE: DF, and the kernel's cached path MTU is not
applied, so a larger probe is really sent) of many sizes at once, to the peer's public address. The
largest size answered crossed the path in both directions (the answer is as large as the question).
Two rounds: the usual MTUs of real links (1500, PPPoE 1492, OpenStack VXLAN 1450, ...), then a fine
search between the largest answered and the smallest unanswered. About one second per peer, a few
dozen packets, once a minute and at once for a new peer. Every peer's input filter accepts echo
requests on the WAN. When nothing is answered (ICMP filtered on the way) the result is "unknown",
and pathmtu.py falls back to the local WAN device.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable

from cloudgw.logs import log_event

log = logging.getLogger("cloudgw.agent")

IP_MTU_DISCOVER = 10
IP_PMTUDISC_PROBE = 3
ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY = 8, 0
IP_AND_ICMP_HEADERS = 28
COMMON_MTUS = (9001, 9000, 1500, 1492, 1480, 1472, 1460, 1450, 1440, 1420, 1400, 1380, 1360, 1340, 1320, 1300, 1280)
FLOOR = 1280


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, size: int) -> bytes:
    """An ICMP echo request whose IP packet is `size` bytes long."""
    payload = bytes((seq + i) & 0xFF for i in range(size - IP_AND_ICMP_HEADERS))
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, _checksum(header + payload), ident, seq) + payload


def parse_reply(packet: bytes) -> tuple[str, int, int, int] | None:
    """(source, ident, seq, IP length) of an echo reply read from a raw socket, else None."""
    if len(packet) < 20:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) < ihl + 8:
        return None
    kind, _code, _sum, ident, seq = struct.unpack_from("!BBHHH", packet, ihl)
    if kind != ICMP_ECHO_REPLY:
        return None
    return socket.inet_ntoa(packet[12:16]), ident, seq, len(packet)


class RawIcmp:
    """One raw ICMP socket with DF set on everything it sends."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE)
        self.sock.setblocking(False)

    def close(self) -> None:
        self.sock.close()

    def round(self, address: str, sizes: Iterable[int], ident: int, timeout: float) -> set[int]:
        """Send one probe of each size (twice: one loss must not lower the result); the sizes answered."""
        wanted = sorted(set(sizes))
        for _copy in range(2):
            for size in wanted:
                with contextlib.suppress(OSError):  # EMSGSIZE: larger than our own link, so unanswered
                    self.sock.sendto(echo_request(ident, size, size), (address, 0))
        answered: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(answered) < len(wanted):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                break
            try:
                packet = self.sock.recv(65535)
            except BlockingIOError:
                continue
            reply = parse_reply(packet)
            if reply and reply[0] == address and reply[1] == ident and reply[2] in wanted and reply[3] == reply[2]:
                answered.add(reply[2])
        return answered


def probe_path(address: str, high: int, timeout: float = 0.5, icmp: RawIcmp | None = None) -> int | None:
    """The largest packet (IP bytes, <= high) that reaches `address` and comes back; None if none did."""
    owned = icmp is None
    icmp = icmp or RawIcmp()
    ident = int.from_bytes(os.urandom(2), "big")
    try:
        coarse = {high, FLOOR} | {m for m in COMMON_MTUS if FLOOR <= m <= high}
        answered = icmp.round(address, coarse, ident, timeout)
        if not answered:
            return None
        best = max(answered)
        above = [size for size in coarse if size > best]
        ceiling = min(above) if above else best + 1
        if ceiling - best > 1:
            step = max(1, (ceiling - best) // 16)
            fine = set(range(best + step, ceiling, step)) | {ceiling - 1}
            answered = icmp.round(address, fine, ident, timeout)
            if answered:
                best = max(best, max(answered))
        return best
    finally:
        if owned:
            icmp.close()


class PathProber:
    """Probes every peer's path: at once for a new peer or address, then every `interval` seconds.
    `on_change` is called when a result changes (the agent then re-renders its routes)."""

    def __init__(
        self,
        wan_mtu: Callable[[], int | None],
        on_change: Callable[[], None] = lambda: None,
        interval: float = 60.0,
        probe: Callable[[str, int], int | None] = probe_path,
    ) -> None:
        self.wan_mtu = wan_mtu
        self.on_change = on_change
        self.interval = interval
        self.probe = probe
        self._targets: dict[str, str] = {}  # peer name -> public address
        self._results: dict[str, int | None] = {}
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set_targets(self, targets: dict[str, str]) -> None:
        with self._lock:
            if targets == self._targets:
                return
            for name, address in targets.items():
                if self._targets.get(name) != address:
                    self._due[name] = 0.0
                    self._results.pop(name, None)
            for name in set(self._targets) - set(targets):
                self._due.pop(name, None)
                self._results.pop(name, None)
            self._targets = dict(targets)
        self._wake.set()

    def results(self) -> dict[str, int | None]:
        with self._lock:
            return dict(self._results)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pathprobe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run_due(self) -> bool:
        """Probe every peer that is due; True if a result changed."""
        now = time.monotonic()
        with self._lock:
            due = [(name, address) for name, address in self._targets.items() if self._due.get(name, 0.0) <= now]
        changed = False
        high = self.wan_mtu() or 1500
        for name, address in due:
            try:
                result = self.probe(address, high)
            except OSError as exc:  # no raw sockets (not root): the local WAN MTU still applies
                log_event(log, "pathmtu.unavailable", logging.WARNING, peer=name, error=exc)
                result = None
            with self._lock:
                if self._targets.get(name) != address:
                    continue
                if name not in self._results or self._results[name] != result:
                    changed = True
                    log_event(log, "pathmtu.probed", peer=name, address=address, path_mtu=result, wan_mtu=high)
                self._results[name] = result
                self._due[name] = time.monotonic() + self.interval
        return changed

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_due():
                    self.on_change()
            except Exception as exc:  # never end the prober on a bug: routes would keep stale MTUs
                log.exception("path probe error (retrying): %s", type(exc).__name__)
            with self._lock:
                next_due = min(self._due.values(), default=time.monotonic() + self.interval)
            self._wake.wait(max(0.05, min(self.interval, next_due - time.monotonic())))
            self._wake.clear()
