"""Throughput over the last hour, from heartbeats: each heartbeat carries every WireGuard peer's byte
counters; the differences between heartbeats give a rate. Kept in memory (one sample per heartbeat,
an hour at most), so a restarted controller starts an empty chart."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from itertools import pairwise

WINDOW_S = 3600.0


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

    def record(self, gateway: str, peers: list[dict[str, object]], at: float) -> None:
        with self._lock:
            for peer in peers:
                key = (gateway, str(peer.get("public_key")))
                samples = self._series.setdefault(key, deque())
                samples.append(Sample(at, int(peer.get("rx_bytes", 0) or 0), int(peer.get("tx_bytes", 0) or 0)))  # type: ignore[call-overload]
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
