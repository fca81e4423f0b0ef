"""Lab lifecycle: up (build, start, wait until the tunnels carry traffic), down (remove everything,
also after a crash), status."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import yaml

from cloudgw.agent.status import read_json, write_json_atomic
from cloudgw.dataplane.netlink import remove_namespace
from cloudgw.errors import CloudgwError, LabError, MissingDependency
from cloudgw.lab import topology
from cloudgw.lab.check import ping
from cloudgw.lab.documents import lab_documents
from cloudgw.lab.runstate import LabPaths, processes_in
from cloudgw.lab.scenario import Scenario, load_scenario
from cloudgw.lab.supervisor import agent_command
from cloudgw.model.document import dump_document
from cloudgw.procs import alive, proc_cmdline, stop_pids

Progress = Callable[[str], None]
REQUIRED = ("ip", "nft", "wireguard-go", "ping", "unshare", "mount", "sysctl")


def check_dependencies() -> None:
    missing = [cmd for cmd in REQUIRED if shutil.which(cmd) is None]
    if missing:
        raise MissingDependency(
            f"missing programs: {', '.join(missing)}; run scripts/install-system.sh (or `make setup`) as root"
        )


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _public_key(paths: LabPaths, node: str) -> str:
    """Run `cloudgw agent init` inside the gateway's namespace: the key is made by the gateway and
    only its public half comes back."""
    state_dir = paths.node_dir(node) / "state"
    result = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            paths.namespace(node),
            sys.executable,
            "-m",
            "cloudgw",
            "agent",
            "init",
            "--state-dir",
            str(state_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise LabError(f"agent init on {node} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def gateway_status(paths: LabPaths, node: str) -> dict[str, Any] | None:
    data = read_json(paths.node_dir(node) / "run" / "status.json")
    return data if isinstance(data, dict) else None


def up(
    scenario: Scenario,
    paths: LabPaths,
    progress: Progress = lambda _m: None,
    timeout: float = 60.0,
    keep_on_failure: bool = False,
) -> None:
    check_dependencies()
    if paths.read_record() is not None or paths.namespaces():
        raise LabError(
            f"lab '{paths.name}' is already up (or left over); run `cloudgw lab down"
            f"{'' if paths.name == 'cgw' else ' --name ' + paths.name}` first"
        )
    started = time.monotonic()
    try:
        _up(scenario, paths, progress, timeout)
    except BaseException:
        if keep_on_failure:
            progress("failed; keeping the lab for inspection (--keep-on-failure)")
        else:
            progress("failed; removing what was built")
            down(paths)
        raise
    progress(f"lab '{paths.name}' is up ({time.monotonic() - started:.1f}s)")


def _up(scenario: Scenario, paths: LabPaths, progress: Progress, timeout: float) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    (paths.root / "scenario.yaml").write_text(yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False))
    namespaces = topology.build(scenario, paths, progress)

    progress("generating gateway keys (on each gateway)")
    public_keys = {site.gateway.name: _public_key(paths, site.gateway.name) for site in scenario.sites}
    documents = lab_documents(scenario, public_keys)
    services = []
    for name, document in documents.items():
        node_dir = paths.node_dir(name)
        node_dir.mkdir(parents=True, exist_ok=True)
        (node_dir / "document.yaml").write_text(yaml.safe_dump(dump_document(document), sort_keys=False))
        services.append(
            {
                "node": name,
                "namespace": paths.namespace(name),
                "command": agent_command(paths, name, scenario.agent.interval, scenario.agent.probe_rate),
            }
        )
    write_json_atomic(
        paths.record,
        {
            "name": paths.name,
            "scenario": scenario.name,
            "namespaces": namespaces,
            "gateways": list(documents),
            "services": services,
            "created": time.time(),
        },
    )

    progress("starting the lab supervisor and the gateway agents")
    paths.logs.mkdir(parents=True, exist_ok=True)
    with open(paths.logs / "supervisor.log", "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "cloudgw.lab.supervisor", paths.name],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def applied() -> bool:
        for name, document in documents.items():
            status = gateway_status(paths, name)
            if not status or status.get("revision") != document.revision:
                return False
        return True

    wait_until(applied, timeout, "every gateway agent to apply its document")
    progress("waiting for the tunnels (first WireGuard handshakes)")
    for site in scenario.sites:
        for other in scenario.sites:
            if other is site:
                continue
            wait_until(
                lambda s=site, o=other: ping(paths.namespace(s.gateway.name), str(o.gateway.lan_address), attempts=1)[
                    0
                ],
                timeout,
                f"tunnel {site.gateway.name} -> {other.gateway.name}",
            )


def supervisor_pid(paths: LabPaths) -> int | None:
    data = read_json(paths.supervisor)
    if not isinstance(data, dict):
        return None
    pid = data.get("pid")
    if isinstance(pid, int) and alive(pid) and "cloudgw.lab.supervisor" in proc_cmdline(pid):
        return pid
    return None


def down(paths: LabPaths, progress: Progress = lambda _m: None) -> dict[str, int]:
    """Stop every process in the lab's namespaces, delete the namespaces and the lab directory.
    Safe to run twice and after a crash."""
    counts = {"processes": 0, "namespaces": 0}
    pid = supervisor_pid(paths)
    if pid is not None:
        progress(f"stopping the lab supervisor (pid {pid})")
        stop_pids([pid], timeout=15)
        counts["processes"] += 1
    namespaces = paths.namespaces()
    leftovers = processes_in(namespaces)
    if leftovers:
        progress(f"stopping {len(leftovers)} process(es) left in the lab's namespaces")
        stuck = stop_pids(leftovers, timeout=5)
        counts["processes"] += len(leftovers)
        if stuck:
            raise LabError(f"processes {stuck} would not stop")
    progress(f"deleting {len(namespaces)} namespaces")
    for namespace in namespaces:
        remove_namespace(namespace)
        counts["namespaces"] += 1
    if paths.root.exists():
        shutil.rmtree(paths.root)
    return counts


def load_lab_scenario(paths: LabPaths) -> Scenario:
    try:
        text = (paths.root / "scenario.yaml").read_text()
    except FileNotFoundError:
        raise LabError(f"lab '{paths.name}' is not up; start it with `cloudgw lab up`") from None
    return load_scenario(text, "lab scenario")


def restart_agent(paths: LabPaths, node: str, timeout: float = 20.0) -> tuple[int, int]:
    """Stop one gateway's agent; the supervisor starts a new one. Returns (old pid, new pid)."""
    data = read_json(paths.supervisor) or {}
    service = data.get("services", {}).get(node)
    if not service or not service.get("pid"):
        raise LabError(f"no running agent for '{node}'")
    old = int(service["pid"])
    stop_pids([old], timeout=10)

    def new_pid() -> int | None:
        current = (read_json(paths.supervisor) or {}).get("services", {}).get(node, {}).get("pid")
        return current if current and current != old and alive(current) else None

    return old, int(wait_until(new_pid, timeout, f"a new agent on {node}"))


def wait_agent_reconciled(paths: LabPaths, node: str, pid: int, timeout: float = 20.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status = gateway_status(paths, node)
        if status and status.get("pid") == pid and status.get("reconciles", 0) >= 1:
            return status
        return None

    result: dict[str, Any] = wait_until(done, timeout, f"agent {pid} on {node} to reconcile")
    return result


__all__ = ["CloudgwError", "down", "gateway_status", "load_lab_scenario", "restart_agent", "up"]
