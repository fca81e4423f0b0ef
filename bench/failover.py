"""HA failover: the outage a VM sees when its site's active gateway is cut off like a power cut.

One `ha` lab (a gateway pair at each site). Each trial: a VM at the private site pings a VM at the
public site every 10 ms (and, in the same trial, another VM pings the Internet host through the
pair's virtual address); the private site's active gateway is failed (`cloudgw lab fail`: links
down, SIGKILL); the outage window is the longest run of unanswered pings (first lost to first
answered). The failed gateway is healed (it comes back as standby), the pair settles, and the next
trial fails the other one. With --controller-down, the controller is stopped for every trial (the
pair decides alone). Run as root:

    .venv/bin/python bench/failover.py --trials 10 --out docs/results/failover.json
    .venv/bin/python bench/failover.py --trials 10 --controller-down --out docs/results/failover-nocontroller.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cloudgw.lab import lab as lablib
from cloudgw.lab.measure import Outage, ping_outage, pinger, roles
from cloudgw.lab.runstate import LabPaths

PAIR = ("private-gw", "private-gw2")
INTERVAL = 0.01


def wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def settled(paths: LabPaths) -> tuple[str, str] | None:
    seen = roles(paths, list(PAIR))
    if sorted(seen.values(), key=str) != ["active", "standby"]:
        return None
    active = next(name for name, role in seen.items() if role == "active")
    return active, next(name for name in PAIR if name != active)


def trial(paths: LabPaths) -> dict[str, Any]:
    active, standby = wait(lambda: settled(paths), 60, "one active gateway")
    outages: dict[str, Outage] = {}

    def measure(key: str, source: str, address: str) -> None:
        process = pinger(paths, source, address, INTERVAL, 7.0)
        output, _ = process.communicate(timeout=60)
        outages[key] = ping_outage(output, INTERVAL)

    threads = [
        threading.Thread(target=measure, args=("vm", "private-vm2", "192.168.1.12")),
        threading.Thread(target=measure, args=("internet", "private-vm3", "198.51.100.10")),
    ]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # answered pings before the cut
    failed_at = time.time()
    lablib.fail_gateway(paths, active)
    for thread in threads:
        thread.join(timeout=90)
    took_over = wait(lambda: roles(paths, [standby])[standby] == "active", 30, f"{standby} active")
    lablib.heal_gateway(paths, active)
    wait(lambda: settled(paths), 60, "the pair to settle after heal")
    return {
        "failed": active,
        "took_over": standby if took_over else None,
        "at": failed_at,
        "vm_outage_s": outages["vm"].window_s,
        "vm_lost": outages["vm"].lost,
        "internet_outage_s": outages["internet"].window_s,
    }


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 3),
        "max": round(ordered[-1], 3),
        "min": round(ordered[0], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--name", default="cgwfo")
    parser.add_argument("--controller-down", action="store_true", help="stop the controller for every trial")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    paths = LabPaths(args.name)
    up = subprocess.run(
        [sys.executable, "-m", "cloudgw", "lab", "up", "--scenario", "ha", "--name", args.name],
        capture_output=True,
        text=True,
    )
    if up.returncode != 0:
        raise SystemExit(f"lab up failed: {up.stdout}{up.stderr}")
    results = []
    try:
        if args.controller_down:
            lablib.set_service_enabled(paths, "controller", False)
        for index in range(args.trials):
            result = trial(paths)
            results.append(result)
            print(
                f"trial {index + 1}: {result['failed']} -> {result['took_over']}: VM outage "
                f"{result['vm_outage_s']:.2f} s ({result['vm_lost']} pings), "
                f"Internet {result['internet_outage_s']:.2f} s",
                flush=True,
            )
    finally:
        subprocess.run([sys.executable, "-m", "cloudgw", "lab", "down", "--name", args.name], capture_output=True)
    report = {
        "command": " ".join(sys.argv),
        "machine": f"{platform.processor() or platform.machine()}, {platform.release()}",
        "controller": "down" if args.controller_down else "up",
        "trials": results,
        "vm_outage_s": summary([r["vm_outage_s"] for r in results]),
        "internet_outage_s": summary([r["internet_outage_s"] for r in results]),
    }
    print(json.dumps({k: report[k] for k in ("controller", "vm_outage_s", "internet_outage_s")}))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
