"""Throughput over the last hour, from heartbeats: each heartbeat carries every WireGuard peer's byte
counters; the differences between heartbeats give a rate. Kept in memory (one sample per heartbeat,
an hour at most), so a restarted controller starts an empty chart."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol

WINDOW_S = 3600.0


class PeerCounters(Protocol):
    @property
    def public_key(self) -> str: ...
    @property
    def rx_bytes(self) -> int: ...
    @property
    def tx_bytes(self) -> int: ...


@dataclass(frozen=True)
class Sample:
    at: float
    rx_bytes: int
    tx_bytes: int


class Telemetry:
    def __init__(self, window: float = WINDOW_S) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], deque[Sample]] = {}  # (gateway, peer public key) -> samples

    def record(self, gateway: str, peers: Sequence[PeerCounters], at: float) -> None:
        """One heartbeat's counters. Series of peers the gateway no longer reports are dropped, so
        memory is bounded by what the gateways report now, never by every key ever sent."""
        with self._lock:
            current = {peer.public_key for peer in peers}
            for key in [k for k in self._series if k[0] == gateway and k[1] not in current]:
                del self._series[key]
            for peer in peers:
                samples = self._series.setdefault((gateway, peer.public_key), deque())
                samples.append(Sample(at, peer.rx_bytes, peer.tx_bytes))
                while samples and samples[0].at < at - self.window:
                    samples.popleft()

    def rates(self, gateway: str, peer_key: str) -> list[dict[str, float]]:
        """Bits per second received from and sent to one peer, between consecutive heartbeats."""
        with self._lock:
            samples = list(self._series.get((gateway, peer_key), ()))
        points = []
        for before, after in pairwise(samples):
            elapsed = after.at - before.at
            if elapsed <= 0 or after.rx_bytes < before.rx_bytes or after.tx_bytes < before.tx_bytes:
                continue  # a restarted tunnel resets its counters
            points.append(
                {
                    "t": after.at,
                    "rx_bps": (after.rx_bytes - before.rx_bytes) * 8 / elapsed,
                    "tx_bps": (after.tx_bytes - before.tx_bytes) * 8 / elapsed,
                }
            )
        return points
