"""The lab supervisor: one long-lived process per lab that starts the lab's services (the controller,
the gateway agents) in their namespaces, restarts one that exits (as systemd would on a real machine),
and reaps every process the lab leaves behind. It is a child subreaper, so the wireguard-go processes
that outlive an agent restart are its children too (PID 1 on these machines does not reap).

A service may ask for listening sockets: the supervisor binds them (in any namespace) and hands them
in with --listen-fd, which is how the controller listens on the lab's WAN and on the host's loopback
at once. Port 0 means "pick one", and the port picked is kept across restarts.

Run by `cloudgw lab up` as `python -m cloudgw.lab.supervisor LAB_NAME`. SIGHUP re-reads lab.json
and starts services added since; SIGTERM stops everything inside the lab's namespaces.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudgw.agent.status import write_json_atomic
from cloudgw.lab.netns import listening_socket
from cloudgw.lab.runstate import LabPaths, processes_in
from cloudgw.procs import stop_pids

PR_SET_CHILD_SUBREAPER = 36
VM_REQUESTS, VM_REPLIES = "vm-requests", "vm-replies"  # under the lab's directory (providers/lab.py)
RESTART_DELAY = 0.5


@dataclass
class Service:
    node: str
    namespace: str
    command: list[str]
    log: Path
    sockets: list[dict[str, Any]] = field(default_factory=list)  # bound here, handed in as --listen-fd
    pid: int | None = None
    restarts: int = 0
    due: float = 0.0  # monotonic time of the next (re)start
    ports: list[int] = field(default_factory=list)  # the ports actually bound, kept across restarts
    disabled: bool = False  # stopped on purpose (`cloudgw lab stop NODE`): not restarted


class Supervisor:
    def __init__(self, paths: LabPaths) -> None:
        self.paths = paths
        self.services: list[Service] = []
        self.stopping = False
        self.reload_requested = False
        self._load()

    def _load(self) -> None:
        record = self.paths.read_record()
        if record is None:
            raise SystemExit(f"no lab record at {self.paths.record}")
        known = {service.node for service in self.services}
        for spec in record["services"]:
            if spec["node"] not in known:
                log = self.paths.logs / f"{spec['node']}.log"
                self.services.append(
                    Service(spec["node"], spec["namespace"], spec["command"], log, list(spec.get("sockets", [])))
                )
        disabled = set(record.get("disabled", []))
        for service in self.services:
            service.disabled = service.node in disabled
            if service.disabled and service.pid is not None:
                os.kill(service.pid, signal.SIGTERM)  # reaped below, and not restarted

    def _start(self, service: Service) -> None:
        service.log.parent.mkdir(parents=True, exist_ok=True)
        sockets = []
        for index, spec in enumerate(service.sockets):
            port = service.ports[index] if index < len(service.ports) else int(spec["port"])
            sock = listening_socket(str(spec["host"]), port, spec.get("netns"))
            if index >= len(service.ports):
                service.ports.append(sock.getsockname()[1])
            sockets.append(sock)
        command = list(service.command)
        for sock in sockets:
            command += ["--listen-fd", str(sock.fileno())]
        with open(service.log, "ab") as log:
            process = subprocess.Popen(
                ["ip", "netns", "exec", service.namespace, *command],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=[sock.fileno() for sock in sockets],
            )
        for sock in sockets:
            sock.close()  # the child holds its own copy
        service.pid = process.pid
        self._save()

    def _save(self) -> None:
        write_json_atomic(
            self.paths.supervisor,
            {
                "pid": os.getpid(),
                "services": {
                    s.node: {"pid": s.pid, "restarts": s.restarts, "ports": s.ports, "disabled": s.disabled}
                    for s in self.services
                },
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
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        signal.signal(signal.SIGHUP, self._on_hup)
        while not self.stopping:
            if self.reload_requested:
                self.reload_requested = False
                self._load()
            self._reap()
            self._serve_vm_requests()
            now = time.monotonic()
            for service in self.services:
                if service.pid is None and now >= service.due and not self.stopping and not service.disabled:
                    self._start(service)
            time.sleep(0.05)
        self._shutdown()
        return 0

    def _serve_vm_requests(self) -> None:
        """The lab's cloud API: the lab's controller (in a namespace whose mounts do not reach the
        host) asks for VMs by dropping a request file; they are made here, on the host, as
        `cloudgw lab vm add|delete` would, and answered with a reply file (providers/lab.py)."""
        inbox = self.paths.root / VM_REQUESTS
        try:
            waiting = sorted(inbox.glob("*.json"))
        except OSError:
            return
        for entry in waiting:
            try:
                request = json.loads(entry.read_text())
                entry.unlink()
            except (OSError, ValueError):
                continue
            write_json_atomic(self.paths.root / VM_REPLIES / f"{request.get('id', 'x')}.json", self._vm(request))

    def _vm(self, request: dict[str, Any]) -> dict[str, Any]:
        from cloudgw.errors import LabError
        from cloudgw.lab import lab as lablib

        try:
            if request.get("op") == "add":
                scenario = lablib.load_lab_scenario(self.paths)
                name, _address, _up = lablib.add_vm(self.paths, scenario, str(request["site"]), str(request["address"]))
                return {"ok": True, "name": name}
            if request.get("op") == "delete":
                lablib.delete_vm(self.paths, str(request["name"]))
                return {"ok": True}
            return {"ok": False, "error": f"unknown request {request.get('op')!r}"}
        except (LabError, KeyError) as exc:
            return {"ok": False, "error": str(exc)}

    def _on_term(self, _signum: int, _frame: object) -> None:
        self.stopping = True

    def _on_hup(self, _signum: int, _frame: object) -> None:
        self.reload_requested = True

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
