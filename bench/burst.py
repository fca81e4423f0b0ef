"""The burst loop's cost: one pass over N policies (default 100) on a real State (SQLite), with
signals that need no network (pool usage) or an HTTP endpoint on 127.0.0.1, and a stand-in cloud
(no cloud's latency counted: the loop's own work). No root needed.

    .venv/bin/python bench/burst.py --policies 100 --passes 30

Each policy has its own public site and pool; demand is steady between the thresholds (a pass that
holds: the common case), then high for a scale-out pass (rows, inventory, launches) and low again.
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import sys
import tempfile
import threading
import time
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from common import machine, save

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloudgw.controller.burstloop import BurstLoop
from cloudgw.controller.config_writes import apply_topology
from cloudgw.controller.db.engine import make_engine, migrate
from cloudgw.controller.state import State
from cloudgw.model.topologyfile import TopologyFile
from cloudgw.providers.base import VmSpec


class Cloud:
    def __init__(self) -> None:
        self.vms: dict[IPv4Address, str] = {}

    def launch_vm(self, vm: VmSpec) -> str:
        self.vms[vm.ip] = f"i-{len(self.vms)}"
        return self.vms[vm.ip]

    def terminate_vm(self, instance: str) -> None:
        self.vms = {ip: i for ip, i in self.vms.items() if i != instance}

    def list_vms(self, policy: str) -> dict[IPv4Address, str]:
        return {}


def topology(policies: int, url: str | None) -> dict[str, Any]:
    sites = [{"name": "private"}] + [{"name": f"p{i:03d}", "provider": "lab"} for i in range(policies)]
    pools = [{"network": "big", "site": "private", "range": "10.0.0.1-10.0.0.250"}]
    pools += [
        {
            "network": "big",
            "site": f"p{i:03d}",
            "range": f"10.{1 + i // 200}.{i % 200}.1-10.{1 + i // 200}.{i % 200}.250",
        }
        for i in range(policies)
    ]
    signal = {"kind": "http", "url": url} if url else {"kind": "pool", "pool": "private-big"}
    return {
        "sites": sites,
        "networks": [{"name": "big", "cidr": "10.0.0.0/8"}],
        "pools": pools,
        "gateways": [{"name": f"gw-{s['name']}", "site": s["name"]} for s in sites],
        "bursts": [
            {
                "name": f"b{i:03d}",
                "network": "big",
                "site": f"p{i:03d}",
                "signal": signal,
                "scale_out_above": 0.8,
                "scale_in_below": 0.2,
                "max_vms": 4,
                "step": 2,
                "warmup": 0,
                "cooldown": 0,
                "drain_grace": 0,
                "template": {"image": "img", "size": "small"},
            }
            for i in range(policies)
        ],
    }


class Demand:
    """An HTTP endpoint answering the demand the benchmark sets."""

    def __init__(self) -> None:
        self.value = 0.5
        demand = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = str(demand.value).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/demand"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def measure(policies: int, passes: int, signal: str) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="cgwbb-"))
    engine = make_engine(f"sqlite:///{work}/controller.db")
    migrate(engine)
    state = State(engine)
    demand = Demand() if signal == "http" else None
    apply_topology(state, "bench", TopologyFile.model_validate(topology(policies, demand.url if demand else None)))
    cloud, clock = Cloud(), {"now": 1_000_000.0}
    loop = BurstLoop(state, lambda: True, lambda _site: cloud, clock=lambda: clock["now"])
    loop.run_once()  # warm: snapshot, index
    holding = []
    for _ in range(passes):
        clock["now"] += 5
        started = time.perf_counter()
        loop.run_once()
        holding.append(time.perf_counter() - started)
    scale = {}
    if demand is not None:  # a pass in which every policy scales out, and one in which all scale in
        for name, value in (
            ("scale-out pass (every policy +2 VMs)", 0.95),
            ("scale-in pass (every policy -2 VMs)", 0.05),
        ):
            demand.value = value
            clock["now"] += 5
            started = time.perf_counter()
            loop.run_once()
            scale[name] = round((time.perf_counter() - started) * 1000, 1)
        clock["now"] += 5
        loop.run_once()  # the drained VMs go (grace 0)
        scale["VMs left in the cloud"] = len(cloud.vms)
        demand.server.shutdown()
    engine.dispose()
    return {
        "policies": policies,
        "signal": signal,
        "holding pass median ms": round(statistics.median(holding) * 1000, 1),
        "holding pass max ms": round(max(holding) * 1000, 1),
        "per policy ms": round(statistics.median(holding) * 1000 / policies, 2),
        **scale,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policies", type=int, default=100)
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--out", default="burst")
    args = parser.parse_args()
    results = [measure(args.policies, args.passes, signal) for signal in ("pool", "http")]
    for result in results:
        print(result, file=sys.stderr)
    print(save(args.out, {"machine": machine(), "results": results}), file=sys.stderr)


if __name__ == "__main__":
    main()
