"""`cloudgw lab check`: the VM x VM connectivity matrix, by real `ping` from inside each VM."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cloudgw.lab.runstate import LabPaths
from cloudgw.lab.scenario import Vm


@dataclass(frozen=True)
class PairResult:
    source: str
    target: str
    address: str
    ok: bool
    rtt_ms: float | None


def ping(namespace: str, address: str, attempts: int = 3, wait_s: float = 1.0) -> tuple[bool, float | None]:
    """One echo per attempt; the first reply wins. Returns (reachable, rtt in ms)."""
    for _ in range(attempts):
        result = subprocess.run(
            ["ip", "netns", "exec", namespace, "ping", "-n", "-c", "1", "-W", str(wait_s), address],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            for token in result.stdout.split():
                if token.startswith("time="):
                    return True, float(token[5:])
            return True, None
    return False, None


def vm_pairs(machines: list[Vm], same_site: bool = False) -> list[tuple[Vm, Vm]]:
    return [(a, b) for a in machines for b in machines if a is not b and (same_site or a.site != b.site)]


def check(
    machines: list[Vm],
    paths: LabPaths,
    same_site: bool = False,
    workers: int = 32,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[PairResult]:
    pairs = vm_pairs(machines, same_site)
    done = 0

    def one(pair: tuple[Vm, Vm]) -> PairResult:
        nonlocal done
        source, target = pair
        ok, rtt = ping(paths.namespace(source.name), str(target.address))
        done += 1
        progress(done, len(pairs))
        return PairResult(source.name, target.name, str(target.address), ok, rtt)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, pairs))
    _ = time.monotonic() - started
    return results
