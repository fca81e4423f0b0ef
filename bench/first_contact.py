"""From agent start to first WireGuard handshake and to a working data path, over fresh joins.

Each trial builds the seed lab from nothing (`cloudgw lab up`): every agent generates a key, joins with
a one-time token, follows its document and brings its tunnel up. For each gateway: from its process
start (/proc/PID/stat) to the first handshake (wireguard-go's last_handshake_time), and to the data
path being ready (`lab up` returns once every gateway applied the full mapping and each gateway pings
the other across the tunnel). Run as root:

    sudo .venv/bin/python bench/first_contact.py --trials 10 --out bench/results/first_contact.json

To compare another tree side by side: PYTHONPATH=OTHER/src .venv/bin/python bench/first_contact.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cloudgw.dataplane.wireguard import Uapi
from cloudgw.lab.runstate import LabPaths

GATEWAYS = ("private-gw", "public-gw")


def process_start(pid: int) -> float:
    """Unix time at which a process started."""
    ticks = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/stat") as handle:
        start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat") as handle:
        boot = next(int(line.split()[1]) for line in handle if line.startswith("btime"))
    return boot + start_ticks / ticks


def first_handshake(paths: LabPaths, gateway: str) -> float | None:
    pairs = Uapi(paths.node_dir(gateway) / "wg" / "cgw0.sock").get()
    seconds = [int(v) for k, v in pairs if k == "last_handshake_time_sec"]
    nanos = [int(v) for k, v in pairs if k == "last_handshake_time_nsec"]
    stamps = [s + n / 1e9 for s, n in zip(seconds, nanos, strict=False) if s]
    return min(stamps) if stamps else None


def trial(index: int) -> dict[str, float]:
    name = f"cgwfc{index}"
    paths = LabPaths(name)
    up = subprocess.run([sys.executable, "-m", "cloudgw", "lab", "up", "--name", name], capture_output=True, text=True)
    ready = time.time()
    try:
        if up.returncode != 0:
            raise SystemExit(f"lab up failed: {up.stdout}{up.stderr}")
        services = json.loads(paths.supervisor.read_text())["services"]
        result: dict[str, float] = {}
        for gateway in GATEWAYS:
            started = process_start(services[gateway]["pid"])
            shook = first_handshake(paths, gateway)
            if shook is None:
                raise SystemExit(f"{gateway}: no handshake although the lab is up")
            result[f"{gateway}_handshake_s"] = shook - started
            result[f"{gateway}_ready_s"] = ready - started
        return result
    finally:
        subprocess.run([sys.executable, "-m", "cloudgw", "lab", "down", "--name", name], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench/results/first_contact.json"))
    args = parser.parse_args()
    rows = []
    for index in range(args.trials):
        row = trial(index)
        rows.append(row)
        print(f"trial {index + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
    summary: dict[str, object] = {"trials": args.trials}
    for what in ("handshake", "ready"):
        values = [row[f"{g}_{what}_s"] for row in rows for g in GATEWAYS]
        summary[f"start_to_{what}_s"] = {"p50": round(statistics.median(values), 2), "max": round(max(values), 2)}
    summary["rows"] = rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))


if __name__ == "__main__":
    main()
