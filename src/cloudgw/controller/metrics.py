"""Prometheus metrics of the controller, computed at scrape time from its state (nothing to keep in
sync): gateways, their tunnels (from heartbeats), connections, the mapping and NAT."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import select

from cloudgw.controller import views
from cloudgw.controller.db.models import ConnectionRow, GatewayRow
from cloudgw.controller.state import State
from cloudgw.mapping.core import conflicts

HEALTH = ("up", "degraded", "down", "pending", "disabled")


class ControllerCollector(Collector):
    def __init__(self, state: State, offline_after: float) -> None:
        self.state = state
        self.offline_after = offline_after

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        snap = self.state.snapshot()
        topo = snap.topo
        now = time.time()
        with self.state.session() as session:
            gateways = {g.name: g for g in session.scalars(select(GatewayRow))}
            connections = list(session.scalars(select(ConnectionRow)))
        yield GaugeMetricFamily("cloudgw_revision", "Configuration revision", value=snap.revision)
        online = GaugeMetricFamily(
            "cloudgw_gateway_up", "1 if the gateway sent a heartbeat recently", labels=["gateway"]
        )
        applied = GaugeMetricFamily(
            "cloudgw_gateway_revision_lag", "Document revision minus applied revision", labels=["gateway"]
        )
        nat = GaugeMetricFamily("cloudgw_gateway_nat_sessions", "NAT sessions on the gateway", labels=["gateway"])
        reconcile = GaugeMetricFamily(
            "cloudgw_gateway_reconcile_seconds", "Duration of the last reconcile", labels=["gateway"]
        )
        rx = CounterMetricFamily("cloudgw_peer_rx_bytes", "Bytes received from a peer", labels=["gateway", "peer"])
        tx = CounterMetricFamily("cloudgw_peer_tx_bytes", "Bytes sent to a peer", labels=["gateway", "peer"])
        age = GaugeMetricFamily(
            "cloudgw_peer_handshake_age_seconds",
            "Seconds since the last WireGuard handshake",
            labels=["gateway", "peer"],
        )
        names_by_key = {g.public_key: g.name for g in topo.gateways.values() if g.public_key}
        for name, row in gateways.items():
            status = row.status or {}
            online.add_metric([name], 1.0 if views.online(row, self.offline_after, now) else 0.0)
            if status.get("revision") is not None:
                applied.add_metric([name], float(row.doc_revision - int(status["revision"])))
            nat.add_metric([name], float(status.get("nat_sessions") or 0))
            if status.get("reconcile_ms") is not None:
                reconcile.add_metric([name], float(status["reconcile_ms"]) / 1000)
            for peer in status.get("peers", []) or []:
                label = names_by_key.get(peer.get("public_key"), str(peer.get("public_key", ""))[:8])
                rx.add_metric([name, label], float(peer.get("rx_bytes", 0)))
                tx.add_metric([name, label], float(peer.get("tx_bytes", 0)))
                if peer.get("last_handshake"):
                    age.add_metric([name, label], now - float(peer["last_handshake"]))
        yield from (online, applied, nat, reconcile, rx, tx, age)
        health = GaugeMetricFamily(
            "cloudgw_connection_health", "1 for the connection's current state", labels=["connection", "state"]
        )
        for row in connections:
            if row.name not in topo.connections:
                continue
            state = views.connection_health(row, snap, gateways, self.offline_after, now).state
            for candidate in HEALTH:
                health.add_metric([row.name, candidate], 1.0 if candidate == state else 0.0)
        yield health
        endpoints = GaugeMetricFamily("cloudgw_endpoints", "Announced endpoints", labels=["site", "effective"])
        counts: dict[tuple[str, str], int] = {}
        for announcement in topo.announcements.values():
            site = topo.gateways[announcement.gateway].site if announcement.gateway in topo.gateways else ""
            key = (site, "true" if snap.index.is_effective(announcement) else "false")
            counts[key] = counts.get(key, 0) + 1
        for (site, effective), count in sorted(counts.items()):
            endpoints.add_metric([site, effective], float(count))
        yield endpoints
        yield GaugeMetricFamily(
            "cloudgw_endpoint_conflicts", "Addresses announced by more than one gateway", value=len(conflicts(topo))
        )


DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class WatchMetrics:
    """What the watch route feeds: how long a commit takes to reach a waiting gateway (the
    controller's part of convergence), and how many gateways are waiting right now."""

    delivery: Histogram
    waiting: Gauge


def registry(state: State, offline_after: float) -> tuple[CollectorRegistry, WatchMetrics]:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(ControllerCollector(state, offline_after))
    delivery = Histogram(
        "cloudgw_watch_delivery_seconds",
        "Time from a commit to the watch response that carries it to a waiting gateway",
        buckets=DELIVERY_BUCKETS,
        registry=reg,
    )
    waiting = Gauge("cloudgw_watch_waiting", "Gateways long-polling for their document right now", registry=reg)
    return reg, WatchMetrics(delivery, waiting)
