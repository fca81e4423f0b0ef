"""Prometheus metrics of one gateway agent, computed at scrape time: WireGuard peers (fresh from the
UAPI), learned endpoints, reconciles, NAT sessions and the nft drop counters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from cloudgw.model.addr import parse_host_port


class AgentCollector(Collector):
    def __init__(self, agent: Any) -> None:
        self.agent = agent

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        agent = self.agent
        doc = agent.applied
        names = {p.public_key: p.name for p in doc.peers} if doc else {}
        stats = getattr(agent.reconciler.dataplane, "peer_stats", None)
        peers = stats() if stats is not None else []
        rx = CounterMetricFamily("cloudgw_agent_peer_rx_bytes", "Bytes received from a peer", labels=["peer"])
        tx = CounterMetricFamily("cloudgw_agent_peer_tx_bytes", "Bytes sent to a peer", labels=["peer"])
        age = GaugeMetricFamily(
            "cloudgw_agent_peer_handshake_age_seconds", "Seconds since the last handshake", labels=["peer"]
        )
        now = time.time()
        for peer in peers:
            label = names.get(peer.public_key, peer.public_key[:8])
            rx.add_metric([label], float(peer.rx_bytes))
            tx.add_metric([label], float(peer.tx_bytes))
            if peer.last_handshake:
                age.add_metric([label], now - peer.last_handshake)
        yield from (rx, tx, age)
        endpoints = GaugeMetricFamily("cloudgw_agent_endpoints", "Endpoints learned on the LAN", labels=["network"])
        for network, items in agent.endpoints_by_network().items():
            endpoints.add_metric([network], float(len(items)))
        yield endpoints
        yield GaugeMetricFamily(
            "cloudgw_agent_revision", "Revision of the applied document", value=float(doc.revision) if doc else -1.0
        )
        yield CounterMetricFamily("cloudgw_agent_reconciles", "Reconciles that completed", value=agent.reconciles)
        yield CounterMetricFamily(
            "cloudgw_agent_reconcile_errors", "Reconciles that failed or were refused", value=agent.errors
        )
        last = agent.last_result
        yield GaugeMetricFamily(
            "cloudgw_agent_reconcile_seconds", "Duration of the last reconcile", value=last.duration_s if last else 0.0
        )
        count, _ = agent.nat_sessions()
        yield GaugeMetricFamily("cloudgw_agent_nat_sessions", "NAT sessions", value=float(count))
        drops = CounterMetricFamily(
            "cloudgw_agent_dropped_packets", "Packets dropped by cloudgw's filters", labels=["reason"]
        )
        counters = last.observation.counters if last and last.observation else {}
        for reason, packets in sorted(counters.items()):
            drops.add_metric([reason], float(packets))
        yield drops


def serve_metrics(agent: Any, listen: str) -> int:
    """Serve /metrics on listen (HOST:PORT) in a background thread; returns the port."""
    host, port = parse_host_port(listen)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(agent))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return int(server.server_address[1])
