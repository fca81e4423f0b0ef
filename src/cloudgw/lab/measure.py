"""Measurements on a running lab, shared by the tests and bench/."""

from __future__ import annotations

import itertools
import math
import statistics
import subprocess
import time
from dataclasses import dataclass

from cloudgw.errors import LabError
from cloudgw.lab import lab as lablib
from cloudgw.lab.runstate import LabPaths
from cloudgw.lab.scenario import Scenario
from cloudgw.procs import alive


@dataclass(frozen=True)
class Convergence:
    address: str
    seconds: float  # from the new VM's interface coming up to the first reply it sends to the prober


def convergence(
    paths: LabPaths, scenario: Scenario, site: str, address: str, prober: str, timeout: float = 15.0
) -> Convergence:
    """Boot a VM at `site` while `prober` (a VM at another site) pings its address every 2 ms, and
    time how long until the first reply. The VM announces itself as a booting VM does (gratuitous
    ARP); its gateway learns it, announces it, the controller tells the prober's gateway, which
    programs its kernel and announces the address on its LAN."""
    ping = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            paths.namespace(prober),
            "ping",
            "-D",
            "-n",
            "-i",
            "0.002",
            "-w",
            str(int(timeout)),
            address,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        _, _, up_at = lablib.add_vm(paths, scenario, site, address)
        assert ping.stdout is not None
        for line in ping.stdout:
            if "bytes from" in line and line.startswith("["):
                replied_at = float(line[1 : line.index("]")])
                return Convergence(address, replied_at - up_at)
        raise LabError(f"{address} did not become reachable from {prober} within {timeout:.0f}s")
    finally:
        ping.terminate()
        ping.wait(timeout=5)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": statistics.median(values),
        "p99": percentile(values, 0.99),
        "min": min(values),
        "max": max(values),
    }


def wait_applied(client: object, timeout: float = 30.0) -> None:
    """Every gateway has applied its newest document."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gateways = client.list("gateways")  # type: ignore[attr-defined]
        if all(g["applied_revision"] == g["doc_revision"] for g in gateways):
            return
        time.sleep(0.1)
    raise LabError("gateways did not apply their documents in time")


@dataclass(frozen=True)
class Outage:
    sent: int
    answered: int
    window_s: float  # the longest run of unanswered pings: first lost to first answered again
    lost: int


def ping_outage(output: str, interval: float) -> Outage:
    """Read `ping -i INTERVAL` output: the longest gap between answered sequence numbers."""
    seqs = sorted({int(part.split("=")[1]) for part in output.split() if part.startswith("icmp_seq=")})
    sent = 0
    for line in output.splitlines():
        if "packets transmitted" in line:
            sent = int(line.split()[0])
    # sequence numbers run 1..sent: a loss at the start or the end is a gap too
    bounded = [0, *seqs, max(sent, seqs[-1] if seqs else 0) + 1]
    longest = max(b - a for a, b in itertools.pairwise(bounded))
    return Outage(sent, len(seqs), round((longest - 1) * interval, 3), sent - len(seqs))


def pinger(paths: LabPaths, source: str, address: str, interval: float, seconds: float) -> subprocess.Popen[str]:
    """ping every `interval` s for `seconds` from a lab VM (read it with ping_outage after wait())."""
    count = int(seconds / interval)
    return subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            paths.namespace(source),
            "ping",
            "-n",
            "-i",
            f"{interval:g}",
            "-c",
            str(count),
            "-W",
            "1",
            address,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def roles(paths: LabPaths, gateways: list[str]) -> dict[str, str | None]:
    """Each gateway's HA role as its agent last wrote it (None: not running or no pair)."""
    result: dict[str, str | None] = {}
    for name in gateways:
        status = lablib.gateway_status(paths, name) or {}
        ha = status.get("ha") or {}
        running = isinstance(status.get("pid"), int) and alive(status["pid"]) and not status.get("stopping")
        result[name] = ha.get("role") if running else None
    return result
