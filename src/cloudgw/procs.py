"""Processes by pid: state, command line, and a polite stop. cloudgw only ever signals pids it started
(recorded in a pid file, or running inside a namespace it created)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path


def proc_state(pid: int) -> str | None:
    """The state letter from /proc/PID/stat ("R", "S", "Z", ...), or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def proc_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def alive(pid: int | None) -> bool:
    return pid is not None and proc_state(pid) not in (None, "Z")


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: its parent (or init) reaps it
        os.waitpid(pid, os.WNOHANG)


def stop_pids(pids: Iterable[int], timeout: float = 5.0) -> list[int]:
    """SIGTERM, wait up to timeout, then SIGKILL. Reaps those that are our children.
    Returns the pids that were still alive after SIGKILL (should be none)."""
    targets = [pid for pid in pids if alive(pid)]
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in targets:
            _reap(pid)
        targets = [pid for pid in targets if alive(pid)]
        if not targets:
            return []
        time.sleep(0.02)
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and targets:
        for pid in targets:
            _reap(pid)
        targets = [pid for pid in targets if alive(pid)]
        time.sleep(0.02)
    return targets
