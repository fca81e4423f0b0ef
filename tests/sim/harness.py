"""Simulated gateways: the real Agent, ControllerLink and watch feed, with the in-memory data plane,
against a real controller. Used by tests/sim (a hundred gateways in one process, no root) and by
bench/scale.py (a thousand, in several processes).

Topology: hub and spokes (site s0000 is the hub, every other site connects to it in one network),
each site with a /24 pool."""

from __future__ import annotations

import threading
import time
from ipaddress import IPv4Address
from pathlib import Path

from cloudgw.agent.agent import Agent
from cloudgw.agent.keys import generate_private_key, public_key_of
from cloudgw.agent.link import ControllerLink, ControllerSource
from cloudgw.agent.reconcile import Reconciler
from cloudgw.dataplane.fake import FakeDataplane


def site_pool(index: int) -> tuple[str, str]:
    base = int(IPv4Address("10.0.0.0")) + index * 256
    return str(IPv4Address(base + 1)), str(IPv4Address(base + 254))


def topology(gateways: int) -> dict:
    sites = [f"s{i:04d}" for i in range(gateways)]
    return {
        "sites": [{"name": s} for s in sites],
        "networks": [{"name": "big", "cidr": "10.0.0.0/8"}],
        "pools": [{"network": "big", "site": s, "range": "-".join(site_pool(i))} for i, s in enumerate(sites)],
        "gateways": [
            {"name": f"gw-{s}", "site": s, "endpoint": f"192.0.2.{i % 250 + 1}:{51820 + i // 250}"}
            for i, s in enumerate(sites)
        ],
        "connections": [{"network": "big", "site_a": sites[0], "site_b": s} for s in sites[1:]],
    }


class SimulatedGateway:
    def __init__(self, name: str, url: str, workdir: Path, token: str) -> None:
        self.name = name
        self.applied_at: dict[int, float] = {}
        self.received_at: dict[int, float] = {}
        self.lock = threading.Lock()
        private = generate_private_key()
        self.link = ControllerLink(url, workdir / name, join_token=token)
        self.link.join(public_key_of(private))
        self.source = ControllerSource(self.link, workdir / name / "document.json", wait=25)
        self.dataplane = FakeDataplane(interfaces=("eth0", "eth1"))
        self.agent = Agent(
            source=self.source,
            reconciler=Reconciler(self.dataplane, private, resolver=lambda e: e),
            interval=3600,
            poll=3600,
        )
        self.source.on_change = self.on_change

    def on_change(self) -> None:
        with self.lock:  # the watch thread is the only caller; the lock documents it
            self.received_at.setdefault(self.source.revision, time.time())
            self.agent.step()
            if self.agent.applied is not None:
                self.applied_at.setdefault(self.agent.applied.revision, time.time())

    def applied(self) -> int:
        return self.agent.applied.revision if self.agent.applied else -1

    def recorded(self, revision: int) -> bool:
        """Whether the time this gateway applied `revision` (or a newer one) is recorded. The agent
        holds the document before on_change records when: a reader that sees applied() and then
        reads applied_at can find nothing there yet."""
        with self.lock:
            return any(rev >= revision for rev in self.applied_at)

    def times(self, revision: int) -> tuple[float | None, float | None]:
        """When this gateway first received, and first applied, `revision` or a newer one."""
        with self.lock:  # the watch thread adds to both
            received = min((t for rev, t in self.received_at.items() if rev >= revision), default=None)
            applied = min((t for rev, t in self.applied_at.items() if rev >= revision), default=None)
        return received, applied


def endpoints_of(index: int, per_site: int, extra: int = 0) -> list[dict[str, str]]:
    first = int(IPv4Address(site_pool(index)[0]))
    return [{"ip": str(IPv4Address(first + k))} for k in range(per_site + extra)]
