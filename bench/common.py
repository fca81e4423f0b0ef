"""Shared by the benchmarks: the machine description and a lab that is removed even on failure."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from cloudgw.lab import lab as lablib  # noqa: E402
from cloudgw.lab.runstate import LabPaths  # noqa: E402
from cloudgw.lab.scenario import find_scenario  # noqa: E402


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    wireguard = subprocess.run(["wireguard-go", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return {
        "kernel": platform.release(),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{int(memory) // 1024 // 1024} GiB",
        "python": platform.python_version(),
        "wireguard-go": wireguard,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


@contextlib.contextmanager
def lab(name: str, scenario: str = "seed") -> Iterator[LabPaths]:
    paths = LabPaths(name)
    lablib.down(paths)
    lablib.up(find_scenario(scenario), paths, progress=lambda m: print(f"  lab: {m}", file=sys.stderr))
    try:
        yield paths
    finally:
        lablib.down(paths)


def save(name: str, data: dict) -> Path:
    """Write a result: `name` is a path if it ends in .json, else a name under bench/results/."""
    out = Path(name) if name.endswith(".json") else ROOT / "bench" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1))
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(admin: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.request("GET", "/healthz")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def lab_iperf(paths: LabPaths, server: str, client: str, address: str, seconds: int, *args: str) -> dict[str, Any]:
    """One iperf3 run between two lab nodes (server started here, once); iperf3's `end` section."""
    server_ns = ["ip", "netns", "exec", paths.namespace(server)]
    process = subprocess.Popen([*server_ns, "iperf3", "-s", "-1"], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if ":5201" in subprocess.run([*server_ns, "ss", "-ltn"], capture_output=True, text=True).stdout:
                break
            time.sleep(0.05)
        out = subprocess.run(
            ["ip", "netns", "exec", paths.namespace(client), "iperf3", "-c", address, "-t", str(seconds), "-J", *args],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
        )
        return dict(json.loads(out.stdout)["end"])
    finally:
        process.kill()
        process.wait()
