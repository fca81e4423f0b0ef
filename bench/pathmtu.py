"""Throughput through a 1400-byte WAN: cloudgw's defaults (path MTU found per peer) against the MTU
tuned by hand (the connection's mtu set to what fits, so the whole tunnel device uses it), in one run,
interleaved. The real-network lab scenario: private VMs on a 1450-byte LAN behind a bridged gateway,
the public gateway behind a 1400-byte WAN. Run as root:

    sudo .venv/bin/python bench/pathmtu.py --reps 3 --out bench/results/pathmtu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cloudgw.lab.controlplane import lab_client
from cloudgw.lab.runstate import LabPaths

TUNED = 1328  # 1400 - 60 (WireGuard over IPv4), a multiple of 16


def ns(paths: LabPaths, node: str) -> list[str]:
    return ["ip", "netns", "exec", paths.namespace(node)]


def iperf(paths: LabPaths, *args: str) -> dict[str, Any]:
    server = subprocess.Popen(
        [*ns(paths, "public-vm11"), "iperf3", "-s", "-1", "-p", "5401"], stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listening = subprocess.run([*ns(paths, "public-vm11"), "ss", "-ltn"], capture_output=True, text=True).stdout
        if ":5401" in listening:
            break
        time.sleep(0.05)
    try:
        client = subprocess.run(
            [*ns(paths, "private-vm1"), "iperf3", "-c", "192.168.1.11", "-p", "5401", "-J", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        report: dict[str, Any] = json.loads(client.stdout)
        return report
    finally:
        server.wait(timeout=30)


def set_mtu(paths: LabPaths, mtu: int) -> None:
    with lab_client(paths) as api:
        connection = api.list("connections")[0]["name"]
        api.update("connections", connection, {"mtu": mtu})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(g["applied_revision"] == g["doc_revision"] for g in api.list("gateways")):
                return
            time.sleep(0.1)
    raise SystemExit("gateways did not apply the MTU change")


def measure(paths: LabPaths) -> dict[str, float]:
    tcp = iperf(paths, "-t", "5")
    udp = iperf(paths, "-u", "-b", "3G", "-l", "1272", "-t", "5")
    return {
        "tcp_mbps": tcp["end"]["sum_received"]["bits_per_second"] / 1e6,
        "tcp_retransmits": tcp["end"]["sum_sent"].get("retransmits", 0),
        "udp_mbps": udp["end"]["sum"]["bits_per_second"] * (1 - udp["end"]["sum"]["lost_percent"] / 100) / 1e6,
        "udp_lost_percent": udp["end"]["sum"]["lost_percent"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/pathmtu.json"))
    args = parser.parse_args()
    paths = LabPaths("cgwpm")
    up = subprocess.run(
        [sys.executable, "-m", "cloudgw", "lab", "up", "--scenario", "real-network", "--name", paths.name],
        capture_output=True,
        text=True,
    )
    if up.returncode != 0:
        raise SystemExit(up.stdout + up.stderr)
    rows: list[dict[str, Any]] = []
    try:
        for rep in range(args.reps):
            for mode, mtu in (("defaults", 1420), ("tuned", TUNED)):
                set_mtu(paths, mtu)
                row = {"rep": rep, "mode": mode, "connection_mtu": mtu, **measure(paths)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        subprocess.run([sys.executable, "-m", "cloudgw", "lab", "down", "--name", paths.name], capture_output=True)
    summary: dict[str, Any] = {"reps": args.reps, "rows": rows}
    for metric in ("tcp_mbps", "udp_mbps"):
        default = statistics.median(r[metric] for r in rows if r["mode"] == "defaults")
        tuned = statistics.median(r[metric] for r in rows if r["mode"] == "tuned")
        summary[metric] = {"defaults": round(default), "tuned": round(tuned), "ratio": round(default / tuned, 3)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))


if __name__ == "__main__":
    main()
