"""Write docs/grafana-dashboard.json: a Grafana dashboard over the controller's and agents' /metrics.

.venv/bin/python scripts/grafana-dashboard.py
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "docs" / "grafana-dashboard.json"

PANELS = [
    ("stat", "Gateways up", "sum(cloudgw_gateway_up)", "short"),
    ("stat", "Connections up", 'sum(cloudgw_connection_health{state="up"})', "short"),
    ("stat", "Connections not up", 'sum(cloudgw_connection_health{state=~"down|degraded|pending"})', "short"),
    ("stat", "Revision", "max(cloudgw_revision)", "short"),
    (
        "timeseries",
        "Tunnel throughput received (per gateway and peer)",
        "rate(cloudgw_peer_rx_bytes_total[5m]) * 8",
        "bps",
    ),
    ("timeseries", "Tunnel throughput sent (per gateway and peer)", "rate(cloudgw_peer_tx_bytes_total[5m]) * 8", "bps"),
    ("timeseries", "Handshake age", "cloudgw_peer_handshake_age_seconds", "s"),
    ("timeseries", "Endpoints per site", 'sum by (site) (cloudgw_endpoints{effective="true"})', "short"),
    ("timeseries", "NAT sessions", "cloudgw_gateway_nat_sessions", "short"),
    ("timeseries", "Reconcile duration", "cloudgw_gateway_reconcile_seconds", "s"),
    ("timeseries", "Document revisions not yet applied", "cloudgw_gateway_revision_lag", "short"),
    ("timeseries", "Reconcile errors (agents)", "rate(cloudgw_agent_reconcile_errors_total[5m])", "short"),
    (
        "timeseries",
        "Packets dropped by cloudgw's filters (agents)",
        "rate(cloudgw_agent_dropped_packets_total[5m])",
        "pps",
    ),
    ("stat", "Endpoint conflicts", "max(cloudgw_endpoint_conflicts)", "short"),
]


def dashboard() -> dict:
    panels = []
    for index, (kind, title, expr, unit) in enumerate(PANELS):
        width = 6 if kind == "stat" else 12
        row_y = sum((6 if PANELS[i][0] == "stat" else 12) for i in range(index)) // 24 * 8
        panels.append(
            {
                "id": index + 1,
                "type": kind,
                "title": title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "targets": [{"refId": "A", "expr": expr, "legendFormat": "__auto"}],
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "gridPos": {
                    "h": 8,
                    "w": width,
                    "x": (sum((6 if PANELS[i][0] == "stat" else 12) for i in range(index)) % 24),
                    "y": row_y,
                },
            }
        )
    return {
        "title": "cloudgw",
        "uid": "cloudgw",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "10s",
        "tags": ["cloudgw"],
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}]
        },
        "panels": panels,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(dashboard(), indent=1) + "\n")
    print(f"wrote {OUT}")
