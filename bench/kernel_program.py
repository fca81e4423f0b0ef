"""How long a gateway takes to program N remote endpoints into its kernel (a /32 route and a proxy-ARP
entry each), then one incremental change, then a reconcile that finds nothing to do. Runs the real
Reconciler and KernelDataplane in a fresh network namespace.

    sudo .venv/bin/python bench/kernel_program.py 1000 10000
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv4Address

from common import save

NS = f"cgwbk-{os.getpid()}"


def document(count: int, extra: int = 0) -> dict:
    base = int(IPv4Address("10.128.0.0"))
    endpoints = [{"ip": str(IPv4Address(base + 1 + i)), "gateway": "gw-b"} for i in range(count + extra)]
    return {
        "revision": count + extra,
        "gateway": {"name": "gw-a", "site": "a", "wan_interface": "wan0"},
        "networks": [
            {
                "name": "n",
                "cidr": "10.0.0.0/8",
                "lan_interface": "lan0",
                "lan_address": "10.0.0.1",
                "pools": [
                    {"site": "a", "range": "10.0.0.2-10.0.255.254"},
                    {"site": "b", "range": "10.128.0.1-10.128.255.254"},
                ],
                "remote_endpoints": endpoints,
            }
        ],
        "peers": [
            {
                "name": "gw-b",
                "site": "b",
                "public_key": base64.b64encode(b"\x01" * 32).decode(),
                "endpoint": "192.0.2.1:51820",
            }
        ],
    }


def inner(counts: list[int], workdir: str) -> None:
    from cloudgw.agent.keys import generate_private_key
    from cloudgw.agent.reconcile import Reconciler
    from cloudgw.dataplane.kernel import KernelDataplane
    from cloudgw.model.document import load_document

    results = []
    for count in counts:
        dataplane = KernelDataplane(socket_dir=f"{workdir}/wg", run_dir=f"{workdir}/run")
        reconciler = Reconciler(dataplane, generate_private_key(), resolver=lambda e: e)
        initial = load_document(document(count))
        started = time.perf_counter()
        full = reconciler.reconcile(initial)
        t_full = time.perf_counter() - started
        changed = load_document(document(count, extra=1))  # parsed before the clock: it arrives parsed
        started = time.perf_counter()
        incremental = reconciler.reconcile(changed, full=False)  # what the agent does on a new document
        t_incr = time.perf_counter() - started
        started = time.perf_counter()
        noop = reconciler.reconcile(changed, full=True)  # the timer's reconcile: reads everything back
        t_noop = time.perf_counter() - started
        results.append(
            {
                "endpoints": count,
                "program_s": round(t_full, 3),
                "actions": len(full.actions),
                "incremental_s": round(t_incr, 4),
                "incremental_actions": len(incremental.actions),
                "full_reconcile_s": round(t_noop, 4),
                "full_reconcile_actions": len(noop.actions),
            }
        )
        reconciler.remove_all()
    print(json.dumps(results))


def main() -> int:
    if sys.argv[1:2] == ["--inner"]:
        inner([int(a) for a in sys.argv[3:]], sys.argv[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("counts", type=int, nargs="*", default=[1000, 10000], help="remote endpoints to program")
    parser.add_argument("--out", default="kernel", help="result name under bench/results/, or a .json path")
    args = parser.parse_args()
    counts = args.counts
    subprocess.run(["ip", "netns", "add", NS], check=True)
    workdir = tempfile.mkdtemp(prefix="cgwbk-")
    try:
        for cmd in (
            ["ip", "-n", NS, "link", "set", "lo", "up"],
            ["ip", "-n", NS, "link", "add", "lan0", "type", "veth", "peer", "name", "lanp"],
            ["ip", "-n", NS, "link", "add", "wan0", "type", "veth", "peer", "name", "wanp"],
        ):
            subprocess.run(cmd, check=True)
        for dev in ("lan0", "lanp", "wan0", "wanp"):
            subprocess.run(["ip", "-n", NS, "link", "set", dev, "up"], check=True)
        subprocess.run(["ip", "-n", NS, "addr", "add", "10.0.0.1/8", "dev", "lan0"], check=True)
        out = subprocess.run(
            ["ip", "netns", "exec", NS, sys.executable, __file__, "--inner", workdir, *map(str, counts)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        print(out.strip())
        save(args.out, json.loads(out))
    finally:
        pids = subprocess.run(["ip", "netns", "pids", NS], capture_output=True, text=True).stdout.split()
        for pid in pids:
            subprocess.run(["kill", pid], check=False)
        subprocess.run(["ip", "netns", "del", NS], check=False)
        subprocess.run(["rm", "-rf", workdir], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
