"""What each nftables rule on the path costs: A/B runs with one rule removed at a time (issue 17).

One `seed` lab. The agents are stopped (`lab stop`: the data plane keeps running, nothing puts a
removed rule back), then for each variant the same rule (by its comment) is deleted on both
gateways, VM to VM throughput is measured (iperf3 TCP 1 stream, TCP 4 streams, UDP offered at
3 Gbit/s in 1200-byte datagrams; private-vm1 -> public-vm11), and the full table is put back.
Variants run round-robin, once per repetition (interleaved), so drift on this shared machine hits
every variant alike. Baseline = the full table; "no table" = `inet cloudgw` deleted. Run as root:

    .venv/bin/python bench/nft_rules.py --repetitions 3 --out docs/results/nft-rules.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Any

from common import lab, lab_iperf, machine, save

from cloudgw.lab import lab as lablib
from cloudgw.lab.runstate import LabPaths

GATEWAYS = ("private-gw", "public-gw")
SECONDS = 4
# (chain, comment) of the rules a VM-to-VM packet meets, and the whole table. Not here: the input
# chain's wan-tunnel accept (without it the tunnel's packets fall to wan-input's drop)
VARIANTS: list[tuple[str, str | None, str | None]] = [
    ("baseline", None, None),
    ("no notrack of the tunnel", "raw-prerouting", "notrack tunnel"),
    ("no notrack of stretched traffic", "raw-prerouting", "notrack stretched"),
    ("no lan-spoof", "forward", "lan-spoof lan0"),
    ("no tunnel-spoof", "forward", "tunnel-spoof cgw0"),
    ("no mss clamp", "forward", "mss"),
    ("no established", "forward", "established"),
    ("no wan-inbound", "forward", "wan-inbound"),
    ("no transit", "forward", "transit"),
    ("no table", "*", None),
]


def nft(paths: LabPaths, gateway: str, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["ip", "netns", "exec", paths.namespace(gateway), "nft", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def remove(paths: LabPaths, chain: str, comment: str | None) -> None:
    for gateway in GATEWAYS:
        if chain == "*":
            nft(paths, gateway, "delete", "table", "inet", "cloudgw")
            continue
        # the forward chain dispatches on the input interface: a rule may sit in several from-X chains
        listing = json.loads(nft(paths, gateway, "-j", "-a", "list", "table", "inet", "cloudgw"))
        found = [
            (i["rule"]["chain"], i["rule"]["handle"])
            for i in listing["nftables"]
            if i.get("rule", {}).get("comment") == comment
            and (i["rule"]["chain"] == chain or (chain == "forward" and i["rule"]["chain"].startswith("from-")))
        ]
        if not found:
            raise SystemExit(f"{gateway}: no rule '{comment}' in chain {chain}")
        for in_chain, handle in found:
            nft(paths, gateway, "delete", "rule", "inet", "cloudgw", in_chain, "handle", str(handle))


def restore(paths: LabPaths, saved: dict[str, str]) -> None:
    for gateway in GATEWAYS:
        text = "table inet cloudgw\ndelete table inet cloudgw\n" + saved[gateway]
        nft(paths, gateway, "-f", "-", stdin=text)


def iperf(paths: LabPaths, *args: str) -> dict[str, Any]:
    return lab_iperf(paths, "public-vm11", "private-vm1", "192.168.1.11", SECONDS, *args)


def measure(paths: LabPaths) -> dict[str, float]:
    udp = iperf(paths, "-u", "-b", "3G", "-l", "1200")["sum"]
    return {
        "tcp1": round(iperf(paths)["sum_received"]["bits_per_second"] / 1e6, 1),
        "tcp4": round(iperf(paths, "-P", "4")["sum_received"]["bits_per_second"] / 1e6, 1),
        "udp": round(udp["bits_per_second"] * (1 - udp["lost_percent"] / 100) / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--out", default="nft-rules")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in VARIANTS}
    with lab("cgwbnft", "seed") as paths:
        for gateway in GATEWAYS:
            lablib.set_service_enabled(paths, gateway, False)  # nothing puts a removed rule back
        saved = {gateway: nft(paths, gateway, "list", "table", "inet", "cloudgw") for gateway in GATEWAYS}
        for repetition in range(args.repetitions):
            for name, chain, comment in VARIANTS:
                if chain is not None:
                    remove(paths, chain, comment)
                try:
                    result = measure(paths)
                finally:
                    restore(paths, saved)
                print(f"  #{repetition + 1} {name}: {result}", file=sys.stderr)
                runs[name].append(result)
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    base = medians["baseline"]
    table = {
        name: {k: {"mbit": m[k], "vs_baseline": round(m[k] / base[k], 3)} for k in m} for name, m in medians.items()
    }
    data = {
        "machine": machine(),
        "command": f"bench/nft_rules.py --repetitions {args.repetitions}",
        "runs": runs,
        "medians": table,
    }
    for name, row in table.items():
        cells = "  ".join(f"{k} {v['mbit']:>8} ({v['vs_baseline']:.2f})" for k, v in row.items())
        print(f"{name:<34} {cells}")
    print(f"saved {save(args.out, data)}", file=sys.stderr)


if __name__ == "__main__":
    main()
