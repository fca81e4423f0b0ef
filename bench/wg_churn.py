"""Does wireguard-go's memory grow with each configuration change (a leak), or level off (the Go
runtime keeping what it once needed)? One wireguard-go in a namespace of its own, driven as hard as its
UAPI socket allows: peers added with 20 allowed IPs each, their allowed IPs replaced, read back,
removed; RSS sampled along the way. Run as root:

    sudo .venv/bin/python bench/wg_churn.py --minutes 3
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import base64
import json
import subprocess
import tempfile
import time

NS = "cgwwgchurn"


def inside(minutes: float, work: Path) -> None:
    from cloudgw.agent.keys import generate_private_key, public_key_of
    from cloudgw.dataplane.wireguard import WireguardGo

    wg = WireguardGo("cgw0", socket_dir=str(work / "sock"), run_dir=work / "run")
    pid = wg.start()
    try:
        uapi = wg.uapi()
        uapi.set([f"private_key={base64.b64decode(generate_private_key()).hex()}", "listen_port=51999"])
        keys = [base64.b64decode(public_key_of(generate_private_key())).hex() for _ in range(10)]

        def rss() -> float:
            line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS"))
            return int(line.split()[1]) / 1024

        samples, started, ops = [], time.monotonic(), 0
        marks = {1_000, 5_000, 20_000}
        while time.monotonic() - started < minutes * 60:
            key = keys[ops % len(keys)]
            ips = [f"allowed_ip=10.{ops % 250}.{j}.0/24" for j in range(20)]
            uapi.set([f"public_key={key}", "replace_allowed_ips=true", "endpoint=127.0.0.1:9", *ips])
            uapi.get()
            if ops % 3 == 0:
                uapi.set([f"public_key={key}", "remove=true"])
            ops += 1
            if ops in marks or ops % 100_000 == 0:
                samples.append(
                    {"seconds": round(time.monotonic() - started), "operations": ops, "rss_mib": round(rss(), 2)}
                )
        print(json.dumps(samples))
    finally:
        wg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside(args.minutes, args.inside)
        return
    work = Path(tempfile.mkdtemp(prefix="cgw-wgchurn-"))
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        out = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                NS,
                sys.executable,
                __file__,
                "--minutes",
                str(args.minutes),
                "--inside",
                str(work),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        subprocess.run(["ip", "netns", "del", NS], check=False)
    samples = json.loads(out.strip().splitlines()[-1])
    for sample in samples:
        print(f"{sample['seconds']:>5} s {sample['operations']:>9} operations  RSS {sample['rss_mib']:.2f} MiB")
    base = next(s for s in samples if s["operations"] >= 20_000)
    last = samples[-1]
    print(
        f"from {base['operations']} to {last['operations']} operations: "
        f"{(last['rss_mib'] / base['rss_mib'] - 1) * 100:+.1f} %"
    )


if __name__ == "__main__":
    main()
