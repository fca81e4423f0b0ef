"""Providers: how fast a VM in one cloud shows in the other cloud's objects and in the mapping, what a
burst costs, and what an idle pass costs in API calls. Against the test clouds (moto behind the
strict AWS layer, the fake OpenStack; tests/clouds/), a controller in this process and two gateways
(the real agent with the in-memory data plane). No root.

    .venv/bin/python bench/providers.py --rounds 20 --interval 5

The figures are cloudgw's side only: a real cloud adds its own API latency, and AWS takes about a
second to move an address (PLATFORM.md section 9).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.*

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Any

from tests.clouds.aws_world import make_aws_world
from tests.clouds.moto_strict import CREDENTIALS, StrictAws
from tests.clouds.openstack_fake import FakeOpenStack, make_openstack_world
from tests.clouds.test_two_clouds import CloudGateway
from tests.controllers import start_controller
from tests.helpers import wait_for


def topology(aws_world: Any, aws_url: str, os_world: dict[str, Any]) -> dict[str, Any]:
    return {
        "sites": [
            {
                "name": "private",
                "provider": "openstack",
                "openstack": {
                    "cloud": "private-cloud",
                    "subnet": "tenant-subnet",
                    "gateway_port": os_world["port"]["id"],
                },
            },
            {
                "name": "public",
                "provider": "aws",
                "aws": {
                    "region": "eu-west-1",
                    "subnet": aws_world.subnet,
                    "gateway_eni": aws_world.gateway_eni,
                    "endpoint_url": aws_url,
                },
            },
        ],
        "networks": [{"name": "lab", "cidr": "192.168.1.0/24"}],
        "pools": [
            {"network": "lab", "site": "private", "range": "192.168.1.4-192.168.1.100"},
            {"network": "lab", "site": "public", "range": "192.168.1.101-192.168.1.200"},
        ],
        "gateways": [
            {
                "name": "private-gw",
                "site": "private",
                "endpoint": "203.0.113.10:51820",
                "lan_addresses": ["192.168.1.253"],
            },
            {
                "name": "public-gw",
                "site": "public",
                "endpoint": "198.51.100.20:51820",
                "lan_addresses": ["192.168.1.254"],
            },
        ],
        "connections": [{"network": "lab", "site_a": "private", "site_b": "public", "mtu": 1380}],
    }


def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_s": round(statistics.median(ordered), 2),
        "p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "max_s": round(ordered[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--interval", type=float, default=5.0, help="the controller's provider_interval")
    parser.add_argument("--out", type=Path, default=Path("bench/results/providers.json"))
    args = parser.parse_args()
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    work = Path(tempfile.mkdtemp(prefix="cgw-bench-providers-"))
    aws, fake = StrictAws(work), FakeOpenStack(work)
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(fake.clouds_yaml)
    controller = start_controller(work / "c", f"sqlite:///{work}/c.db", provider_interval=args.interval)
    gateways: list[CloudGateway] = []
    result: dict[str, Any] = {"interval_s": args.interval}
    try:
        aws_world = make_aws_world(aws.ec2, gateway_type="m5.24xlarge")  # 50 addresses per ENI
        os_world = make_openstack_world(fake)
        admin = controller.client()
        started = time.monotonic()
        admin.json("PUT", "/api/v1/topology", json=topology(aws_world, aws.url, os_world))
        for name, endpoint in (("private-gw", "203.0.113.10:51820"), ("public-gw", "198.51.100.20:51820")):
            token = admin.create("tokens", {"name": f"join-{name}", "role": "join", "gateway": name})["token"]
            gateways.append(CloudGateway(name, controller.url, work / "gw", token, endpoint))

        def states() -> list[str]:
            return sorted(p["state"] for p in admin.json("GET", "/api/v1/providers"))

        wait_for(lambda: states() == ["ok", "ok"], 120, what="both clouds ok")
        result["empty_to_ok_s"] = round(time.monotonic() - started, 2)

        added, removed, mapped = [], [], []
        for index in range(args.rounds):
            ip = f"192.168.1.{10 + index}"
            t0 = time.monotonic()
            port = fake.add(
                "ports",
                name=f"vm{index}",
                network_id=os_world["network"]["id"],
                device_owner="compute:nova",
                fixed_ips=[{"subnet_id": os_world["subnet"]["id"], "ip_address": ip}],
            )
            wait_for(lambda ip=ip: ip in aws_world.secondary(), 120, what="the VM on the ENI")
            added.append(time.monotonic() - t0)
            t0 = time.monotonic()
            fake.data["ports"].pop(port["id"])
            wait_for(lambda ip=ip: ip not in aws_world.secondary(), 120, what="the VM off the ENI")
            removed.append(time.monotonic() - t0)
            ip = f"192.168.1.{110 + index}"
            t0 = time.monotonic()
            instance, _ = aws_world.launch_vm(ip)
            wait_for(lambda ip=ip: admin.resolve("lab", ip)["state"] == "effective", 120, what="the AWS VM mapped")
            mapped.append(time.monotonic() - t0)
            aws_world.terminate(instance)
        result["openstack_vm_to_aws_eni"] = stats(added)
        result["openstack_vm_gone_from_aws_eni"] = stats(removed)
        result["aws_vm_to_effective_mapping"] = stats(mapped)

        t0 = time.monotonic()
        burst = [f"192.168.1.{40 + i}" for i in range(args.burst)]
        for ip in burst:
            fake.add(
                "ports",
                name=f"burst-{ip}",
                network_id=os_world["network"]["id"],
                device_owner="compute:nova",
                fixed_ips=[{"subnet_id": os_world["subnet"]["id"], "ip_address": ip}],
            )
        wait_for(lambda: set(burst) <= aws_world.secondary(), 300, what="the burst on the ENI")
        result["burst"] = {"vms": args.burst, "all_on_aws_eni_s": round(time.monotonic() - t0, 2)}

        sync = controller.server.config.app.state.cloudsync  # type: ignore[attr-defined]
        wait_for(lambda: states() == ["ok", "ok"], 120, what="settled")
        before_aws, before_os, passes = sum(aws.calls.values()), len(fake.requests), sync.passes
        t0 = time.monotonic()
        for _ in range(5):
            sync.run_once()
        elapsed = time.monotonic() - t0
        mutations = sum(n for a, n in aws.calls.items() if not a.startswith("Describe"))
        result["idle_pass"] = {
            "seconds": round(elapsed / 5, 3),
            "aws_calls": round((sum(aws.calls.values()) - before_aws) / 5, 1),
            "openstack_requests": round((len(fake.requests) - before_os) / 5, 1),
            "background_passes_meanwhile": sync.passes - passes - 5,
        }
        result["aws_mutating_calls_total"] = mutations
        result["strict_layer_refusals"] = len(aws.refusals)
    finally:
        for gateway in gateways:
            gateway.stop()
        controller.stop()
        fake.stop()
        aws.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
