"""The L2 mode beside the L3 mode, in one run: throughput and latency VM to VM across the WAN.

Two labs are up at the same time, built from one scenario (`l2`: two sites, bridged gateway LANs);
one stretches the network in L2 mode (VXLAN inside WireGuard), the other, identical but for
`mode: l3`, with host routes and proxy ARP. Each repetition measures both, one after the other
(interleaved), from private-vm1 to public-vm11: iperf3 TCP 1 stream, TCP 4 streams, UDP at an
offered rate above what either carries (received rate counted), and ping round trips (200 at 10 ms).
Also the VM move convergence (L2 only): a VM moves sites under a 10 ms ping, time from its port
coming up to the first answer. Run as root:

    .venv/bin/python bench/l2.py --repetitions 3 --out docs/results/l2.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from importlib import resources
from typing import Any

from common import lab_iperf, machine, save

from cloudgw.lab import lab as lablib
from cloudgw.lab.runstate import LabPaths
from cloudgw.lab.scenario import find_scenario, load_scenario

SECONDS = 5


def ns(paths: LabPaths, node: str) -> list[str]:
    return ["ip", "netns", "exec", paths.namespace(node)]


def iperf(paths: LabPaths, *args: str) -> dict[str, Any]:
    return lab_iperf(paths, "public-vm11", "private-vm1", "192.168.1.11", SECONDS, *args)


def measure(paths: LabPaths) -> dict[str, float]:
    tcp1 = iperf(paths)["sum_received"]["bits_per_second"]
    tcp4 = iperf(paths, "-P", "4")["sum_received"]["bits_per_second"]
    udp = iperf(paths, "-u", "-b", "3G", "-l", "1200")["sum"]
    ping = subprocess.run(
        [*ns(paths, "private-vm1"), "ping", "-n", "-q", "-i", "0.01", "-c", "200", "192.168.1.11"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    rtts = ping.strip().splitlines()[-1].split("=")[1].split()[0].split("/")  # min/avg/max/mdev
    return {
        "tcp1_mbit": round(tcp1 / 1e6, 1),
        "tcp4_mbit": round(tcp4 / 1e6, 1),
        "udp_mbit": round(udp["bits_per_second"] * (1 - udp["lost_percent"] / 100) / 1e6, 1),
        "udp_lost_percent": round(udp["lost_percent"], 1),
        "rtt_avg_ms": float(rtts[1]),
        "rtt_max_ms": float(rtts[2]),
    }


def move_convergence(paths: LabPaths, trials: int) -> list[float]:
    """private-vm3 moves to the public site and back, pinged every 10 ms from the other site."""
    scenario = lablib.load_lab_scenario(paths)
    results = []
    for trial in range(trials):
        to, source = ("public", "private-vm1") if trial % 2 == 0 else ("private", "public-vm11")
        ping = subprocess.Popen(
            [*ns(paths, source), "ping", "-D", "-n", "-i", "0.01", "-c", "500", "192.168.1.3"],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.5)  # pings flowing before the move (the measurement starts at the move)
        up_at = lablib.move_vm(paths, scenario, "private-vm3", to)
        out, _ = ping.communicate(timeout=30)
        first = next(
            (
                float(line[1 : line.index("]")]) - up_at
                for line in out.splitlines()
                if line.startswith("[") and "bytes from" in line and float(line[1 : line.index("]")]) >= up_at
            ),
            None,
        )
        if first is None:
            raise SystemExit(f"the moved VM never answered in trial {trial}")
        results.append(round(first * 1000, 1))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--moves", type=int, default=10)
    parser.add_argument("--out", default="l2")
    args = parser.parse_args()
    l2 = find_scenario("l2")
    text = (resources.files("cloudgw.lab") / "scenarios" / "l2.yaml").read_text()
    as_l3 = load_scenario(text.replace("  mode: l2\n", "  mode: l3\n").replace("name: l2\n", "name: l2-as-l3\n"))
    assert as_l3.network.mode == "l3" and l2.network.mode == "l2"
    labs = {"l2": (l2, LabPaths("cgwbl2")), "l3": (as_l3, LabPaths("cgwbl3"))}
    try:
        for scenario, paths in labs.values():
            lablib.down(paths)
            lablib.up(scenario, paths, progress=lambda m: print(f"  lab: {m}", file=sys.stderr))
        runs: dict[str, list[dict[str, float]]] = {"l2": [], "l3": []}
        for repetition in range(args.repetitions):
            for mode in ("l2", "l3") if repetition % 2 == 0 else ("l3", "l2"):
                result = measure(labs[mode][1])
                print(f"  {mode} #{repetition + 1}: {result}", file=sys.stderr)
                runs[mode].append(result)
        moves = move_convergence(labs["l2"][1], args.moves)
    finally:
        for _scenario, paths in labs.values():
            lablib.down(paths)
    medians = {
        mode: {key: statistics.median(r[key] for r in results) for key in results[0]} for mode, results in runs.items()
    }
    ratios = {key: round(medians["l2"][key] / medians["l3"][key], 2) for key in ("tcp1_mbit", "tcp4_mbit", "udp_mbit")}
    data = {
        "machine": machine(),
        "command": f"bench/l2.py --repetitions {args.repetitions} --moves {args.moves}",
        "runs": runs,
        "medians": medians,
        "l2_over_l3": ratios,
        "move_convergence_ms": {
            "trials": moves,
            "median": statistics.median(moves),
            "max": max(moves),
        },
    }
    print(json.dumps({"medians": medians, "l2_over_l3": ratios, "moves": data["move_convergence_ms"]}, indent=1))
    print(f"saved {save(args.out, data)}", file=sys.stderr)


if __name__ == "__main__":
    main()
