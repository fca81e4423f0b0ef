"""Convergence: how long from a new VM's first packet at the public site until a private VM's pings
to it are answered (gateway learns it -> announces -> controller -> other gateway programs its
kernel). Builds its own lab.

    sudo .venv/bin/python bench/convergence.py [--trials 30]
"""

from __future__ import annotations

import argparse

from common import lab, machine, save

from cloudgw.lab import controlplane
from cloudgw.lab import lab as lablib
from cloudgw.lab.measure import convergence, summary, wait_applied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--out", default="convergence", help="result name under bench/results/, or a .json path")
    args = parser.parse_args()
    with lab("cgwbc") as paths:
        scenario = lablib.load_lab_scenario(paths)
        with controlplane.lab_client(paths) as api:
            api.update("pools", "public-lab", {"range": "192.168.1.11-192.168.1.100"})
            wait_applied(api)
        results = []
        for index in range(args.trials):
            result = convergence(paths, scenario, "public", f"192.168.1.{21 + index}", "private-vm1")
            results.append(result.seconds)
            print(f"  trial {index + 1:2}: {result.seconds * 1000:6.1f} ms")
    stats = summary(results)
    print(
        f"convergence: n={stats['n']} p50={stats['p50'] * 1000:.1f} ms p99={stats['p99'] * 1000:.1f} ms "
        f"min={stats['min'] * 1000:.1f} max={stats['max'] * 1000:.1f}"
    )
    print(f"saved {save(args.out, {'machine': machine(), 'seconds': results, 'summary': stats})}")


if __name__ == "__main__":
    main()
