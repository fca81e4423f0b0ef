"""Where a lab keeps its state, and how it finds what it started.

A lab named `cgw` puts its namespaces at `cgw-<node>` and its files under /run/cloudgw/lab/cgw/.
Processes are found by the network namespace they run in: every process inside a lab namespace was
started by the lab (or by someone through `cloudgw lab exec`), so `lab down` may stop it by pid.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudgw.errors import InvalidInput, Problem
from cloudgw.lab.location import lab_root
from cloudgw.lab.netns import list_namespaces, namespace_inode
from cloudgw.procs import proc_state

LAB_NAME_RE = re.compile(r"^cgw[a-z0-9]{0,8}$")


def check_lab_name(name: str) -> str:
    if not LAB_NAME_RE.match(name):
        raise InvalidInput(
            [
                Problem(
                    "--name",
                    f"'{name}' is not a lab name",
                    "use 'cgw' followed by up to 8 lower-case letters or digits, e.g. cgw2",
                )
            ],
            what="lab",
        )
    return name


@dataclass(frozen=True)
class LabPaths:
    name: str

    @property
    def root(self) -> Path:
        return lab_root() / self.name

    @property
    def record(self) -> Path:
        return self.root / "lab.json"

    @property
    def supervisor(self) -> Path:
        return self.root / "supervisor.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def node_dir(self, node: str) -> Path:
        return self.root / "nodes" / node

    def namespace(self, node: str) -> str:
        return f"{self.name}-{node}"

    def read_record(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.record.read_text())
            return data
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def namespaces(self) -> list[str]:
        prefix = f"{self.name}-"
        return [ns for ns in list_namespaces() if ns.startswith(prefix)]


def processes_in(namespaces: list[str]) -> list[int]:
    """Pids of live (not zombie) processes whose network namespace is one of these."""
    wanted = {inode for inode in (namespace_inode(ns) for ns in namespaces) if inode is not None}
    if not wanted:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            info = os.stat(f"/proc/{pid}/ns/net")
            if (info.st_dev, info.st_ino) in wanted and proc_state(pid) not in (None, "Z"):
                found.append(pid)
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return found
