"""The lab supervisor: one long-lived process per lab that starts the gateway agents in their
namespaces, restarts an agent that exits (as systemd would on a real gateway), and reaps every
process the lab leaves behind. It is a child subreaper, so the wireguard-go processes that outlive an
agent restart are its children too.

Run by `cloudgw lab up` as `python -m cloudgw.lab.supervisor LAB_NAME`; stopped by SIGTERM from
`cloudgw lab down`, after which it stops everything inside the lab's namespaces.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cloudgw.agent.status import write_json_atomic
from cloudgw.lab.runstate import LabPaths, processes_in
from cloudgw.procs import stop_pids

PR_SET_CHILD_SUBREAPER = 36
RESTART_DELAY = 0.5


@dataclass
class Service:
    node: str
    namespace: str
    command: list[str]
    log: Path
    pid: int | None = None
    restarts: int = 0
    due: float = 0.0  # monotonic time of the next (re)start


def agent_command(paths: LabPaths, node: str, interval: float, probe_rate: float) -> list[str]:
    node_dir = paths.node_dir(node)
    return [
        sys.executable,
        "-m",
        "cloudgw",
        "agent",
        "run",
        "--state",
        str(node_dir / "document.yaml"),
        "--state-dir",
        str(node_dir / "state"),
        "--run-dir",
        str(node_dir / "run"),
        "--wg-socket-dir",
        str(node_dir / "wg"),
        "--interval",
        str(interval),
        "--probe-rate",
        str(probe_rate),
    ]


class Supervisor:
    def __init__(self, paths: LabPaths) -> None:
        self.paths = paths
        record = paths.read_record()
        if record is None:
            raise SystemExit(f"no lab record at {paths.record}")
        self.services = [
            Service(s["node"], s["namespace"], s["command"], paths.logs / f"{s['node']}.log")
            for s in record["services"]
        ]
        self.stopping = False

    def _start(self, service: Service) -> None:
        service.log.parent.mkdir(parents=True, exist_ok=True)
        with open(service.log, "ab") as log:
            process = subprocess.Popen(
                ["ip", "netns", "exec", service.namespace, *service.command],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        service.pid = process.pid
        self._save()

    def _save(self) -> None:
        write_json_atomic(
            self.paths.supervisor,
            {
                "pid": os.getpid(),
                "services": {s.node: {"pid": s.pid, "restarts": s.restarts} for s in self.services},
            },
        )

    def _reap(self) -> None:
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for service in self.services:
                if service.pid == pid:
                    service.pid = None
                    if not self.stopping:
                        service.restarts += 1
                        service.due = time.monotonic() + RESTART_DELAY
                    self._save()

    def run(self) -> int:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        for service in self.services:
            self._start(service)
        while not self.stopping:
            self._reap()
            now = time.monotonic()
            for service in self.services:
                if service.pid is None and now >= service.due and not self.stopping:
                    self._start(service)
            time.sleep(0.1)
        self._shutdown()
        return 0

    def _on_term(self, _signum: int, _frame: object) -> None:
        self.stopping = True

    def _shutdown(self) -> None:
        stop_pids([s.pid for s in self.services if s.pid], timeout=5)
        stop_pids(processes_in(self.paths.namespaces()), timeout=5)
        self._reap()
        for service in self.services:
            service.pid = None
        self._save()


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m cloudgw.lab.supervisor LAB_NAME", file=sys.stderr)
        return 2
    return Supervisor(LabPaths(sys.argv[1])).run()


if __name__ == "__main__":
    raise SystemExit(main())
