"""Prometheus metrics of the controller, computed at scrape time from its state (nothing to keep in
sync): gateways, their tunnels (from heartbeats), connections, the mapping and NAT."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import select

from cloudgw.controller import views
from cloudgw.controller.cloudsync import status_rows
from cloudgw.controller.db.models import ConnectionRow, GatewayRow
from cloudgw.controller.state import State

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
        mtu = GaugeMetricFamily(
            "cloudgw_peer_tunnel_mtu", "Tunnel MTU a gateway uses towards a peer", labels=["gateway", "peer"]
        )
        path_mtu = GaugeMetricFamily(
            "cloudgw_peer_path_mtu_bytes",
            "Underlay path MTU towards a peer (probed, else the WAN device)",
            labels=["gateway", "peer"],
        )
        lowered = GaugeMetricFamily(
            "cloudgw_peer_mtu_lowered",
            "1 when the configured tunnel MTU did not fit the path and was lowered",
            labels=["gateway", "peer"],
        )
        role = GaugeMetricFamily(
            "cloudgw_gateway_active",
            "1 for the active gateway of an HA pair, 0 for a standby (sites with one gateway: not listed)",
            labels=["gateway", "site"],
        )
        epoch = GaugeMetricFamily("cloudgw_site_role_epoch", "Epoch of the HA pair's last role change", labels=["site"])
        for site in topo.sites:
            members = topo.gateways_of(site)
            if len(members) > 1:
                epoch.add_metric([site], float(max(g.role_epoch for g in members)))
                for member in members:
                    role.add_metric([member.name, site], 1.0 if member.role == "active" else 0.0)
        yield from (role, epoch)
        names_by_key = {g.public_key: g.name for g in topo.gateways.values() if g.public_key}
        for name, row in gateways.items():
            status, _bad = views.stored_heartbeat(row)
            online.add_metric([name], 1.0 if views.online(row, self.offline_after, now) else 0.0)
            if status.revision is not None:
                applied.add_metric([name], float(row.doc_revision - status.revision))
            nat.add_metric([name], float(status.nat_sessions or 0))
            if status.reconcile_ms is not None:
                reconcile.add_metric([name], status.reconcile_ms / 1000)
            for peer in status.peers:
                label = names_by_key.get(peer.public_key, peer.public_key[:8])
                rx.add_metric([name, label], float(peer.rx_bytes))
                tx.add_metric([name, label], float(peer.tx_bytes))
                if peer.last_handshake:
                    age.add_metric([name, label], now - peer.last_handshake)
            for path in status.paths:
                mtu.add_metric([name, path.peer], float(path.mtu))
                if path.path is not None:
                    path_mtu.add_metric([name, path.peer], float(path.path))
                lowered.add_metric([name, path.peer], 1.0 if path.warning else 0.0)
        yield from (online, applied, nat, reconcile, rx, tx, age, mtu, path_mtu, lowered)
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
            "cloudgw_endpoint_conflicts",
            "Addresses announced by more than one gateway",
            value=len(self.state.endpoint_listing.conflicts(snap.index)),
        )
        yield from provider_metrics(status_rows(self.state))


PROVIDER_STATES = ("ok", "converging", "error", "refused", "removing")


def provider_metrics(rows: list[dict[str, Any]]) -> Iterator[GaugeMetricFamily]:
    """Per site whose cloud cloudgw drives: its state (one series per state, 1 for the current),
    when it was last checked, and what it holds there."""
    state = GaugeMetricFamily(
        "cloudgw_provider_state",
        "The provider reconciler's state of a site's cloud",
        labels=["site", "provider", "state"],
    )
    checked = GaugeMetricFamily(
        "cloudgw_provider_checked_timestamp_seconds", "When the site's cloud was last checked", labels=["site"]
    )
    held = GaugeMetricFamily(
        "cloudgw_provider_cloud_objects",
        "What the site's cloud holds for cloudgw (secondary IPs, address pairs, listed VMs)",
        labels=["site", "kind"],
    )
    for row in rows:
        for name in PROVIDER_STATES:
            state.add_metric([row["site"], row["provider"], name], 1.0 if row["state"] == name else 0.0)
        checked.add_metric([row["site"]], row["checked_at"].timestamp())
        for kind in ("secondary_ips", "allowed_address_pairs", "inventory"):
            if isinstance(row["detail"].get(kind), int):
                held.add_metric([row["site"], kind], float(row["detail"][kind]))
    yield from (state, checked, held)


DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class WatchMetrics:
    """What the watch route feeds: how long a commit takes to reach a waiting gateway (the
    controller's part of convergence), and how many gateways are waiting right now."""

    delivery: Histogram
    waiting: Gauge
    auth_failures: Counter  # by reason: missing, malformed, invalid, expired, used, forbidden
    auth_throttled: Counter
    role_changes: Counter  # HA roles granted or left, by role


def registry(
    state: State, offline_after: float, bus_loop: Callable[[], asyncio.AbstractEventLoop | None] = lambda: None
) -> tuple[CollectorRegistry, WatchMetrics]:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(ControllerCollector(state, offline_after))
    delivery = Histogram(
        "cloudgw_watch_delivery_seconds",
        "Time from a commit to the watch response that carries it to a waiting gateway",
        buckets=DELIVERY_BUCKETS,
        registry=reg,
    )
    waiting = Gauge("cloudgw_watch_waiting", "Gateways long-polling for their document right now", registry=reg)
    tasks = Gauge(
        "cloudgw_asyncio_tasks", "Tasks alive on the controller's event loop (the soak watches it)", registry=reg
    )
    tasks.set_function(lambda: float(len(asyncio.all_tasks(loop))) if (loop := bus_loop()) is not None else 0.0)
    failures = Counter(
        "cloudgw_auth_failures",
        "Requests refused for their credential (never counted: the secret)",
        ["reason"],
        registry=reg,
    )
    throttled = Counter(
        "cloudgw_auth_throttled", "Credential checks refused because their address failed too often", registry=reg
    )
    role_changes = Counter(
        "cloudgw_role_changes",
        "HA role changes the controller recorded (a takeover, a step-down)",
        ["role"],
        registry=reg,
    )
    return reg, WatchMetrics(delivery, waiting, failures, throttled, role_changes)
