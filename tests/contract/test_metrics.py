"""/metrics of the controller: authenticated, in Prometheus text format, and every metric the Grafana
dashboard queries exists (the agents' are checked in the lab)."""

from __future__ import annotations

import json
import re
import ssl
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.contract.world import join, make_world

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"


def dashboard_metrics(prefix: str) -> set[str]:
    queries = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    return {name for q in queries for name in re.findall(r"\b(cloudgw_[a-z_]+)", q) if name.startswith(prefix)}


def test_metrics_need_a_token_and_describe_gateways_and_connections(api, controller, uid):
    world = make_world(api, uid, gateways=True, connect=True)
    credential_a, _ = join(api, controller, world.gw_a)
    _, key_b = join(api, controller, world.gw_b)
    with controller.agent(credential_a) as agent_a:
        agent_a.heartbeat(
            {
                "revision": 1,
                "nat_sessions": 3,
                "reconcile_ms": 12.5,
                "peers": [{"public_key": key_b, "rx_bytes": 1000, "tx_bytes": 2000, "last_handshake": time.time() - 4}],
            }
        )
        agent_a.announce(world.network, [{"ip": "192.168.1.6"}])
    context = ssl.create_default_context(cafile=controller.ca)
    assert httpx.get(f"{controller.url}/metrics", verify=context).status_code == 401
    text = api.request("GET", "/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("cloudgw_gateway_up", (("gateway", world.gw_a),))] == 1.0
    assert samples[("cloudgw_gateway_nat_sessions", (("gateway", world.gw_a),))] == 3.0
    assert samples[("cloudgw_peer_rx_bytes_total", (("gateway", world.gw_a), ("peer", world.gw_b)))] == 1000.0
    assert 3 < samples[("cloudgw_peer_handshake_age_seconds", (("gateway", world.gw_a), ("peer", world.gw_b)))] < 60
    assert samples[("cloudgw_connection_health", (("connection", f"c-{uid}"), ("state", "down")))] == 1.0
    assert samples[("cloudgw_endpoints", (("effective", "true"), ("site", world.a)))] >= 1
    assert samples[("cloudgw_asyncio_tasks", ())] >= 1  # at least the database follower
    exported = {s.name for f in families.values() for s in f.samples}
    assert dashboard_metrics("cloudgw_") - {m for m in dashboard_metrics("cloudgw_agent_")} <= exported


def test_dashboard_is_valid_grafana_json():
    data = json.loads(DASHBOARD.read_text())
    assert data["uid"] == "cloudgw" and len(data["panels"]) >= 10
    assert all(p["targets"][0]["expr"] for p in data["panels"])
