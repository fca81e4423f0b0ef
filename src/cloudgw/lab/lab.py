"""Lab lifecycle: up (build, start, wait until the tunnels carry traffic), down (remove everything,
also after a crash), status."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import yaml

from cloudgw.agent.status import read_json, write_json_atomic
from cloudgw.client import Client
from cloudgw.dataplane.netlink import Netlink
from cloudgw.errors import CloudgwError, LabError, MissingDependency
from cloudgw.lab import controlplane, topology
from cloudgw.lab.check import ping
from cloudgw.lab.netns import remove_namespace
from cloudgw.lab.runstate import LabPaths, processes_in
from cloudgw.lab.scenario import Scenario, Vm, load_scenario, site_gateways, vms
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

    progress("initialising the controller (CA, certificate, database, admin token)")
    info = controlplane.init_controller(paths, scenario)
    services = [controlplane.controller_service(paths, scenario), controlplane.internet_service(paths)]
    record = {
        "name": paths.name,
        "scenario": scenario.name,
        "namespaces": namespaces,
        "gateways": [g.name for s in scenario.sites for g in site_gateways(s)],
        "services": services,
        "created": time.time(),
    }
    write_json_atomic(paths.record, record)

    progress("starting the lab supervisor and the controller")
    paths.logs.mkdir(parents=True, exist_ok=True)
    with open(paths.logs / "supervisor.log", "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "cloudgw.lab.supervisor", paths.name],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    port = wait_until(lambda: _service_port(paths, topology.CONTROLLER, 1), timeout, "the controller's host port")
    controlplane.write_cli_config(paths, f"https://127.0.0.1:{port}", info["admin_token"])
    client = controlplane.lab_client(paths)
    wait_until(lambda: _healthy(client), timeout, "the controller to answer")

    spec = controlplane.lab_topology(scenario)
    progress(
        f"applying the topology through the API ({len(spec.sites)} sites, {len(spec.pools)} pools, "
        f"{len(spec.gateways)} gateways, {len(spec.connections)} connections)"
    )
    controlplane.apply_topology(client, spec)
    for gateway in (g for site in scenario.sites if site.kind == "cloudgw" for g in site_gateways(site)):
        token = client.create("tokens", {"name": f"join-{gateway.name}", "role": "join", "gateway": gateway.name})[
            "token"
        ]
        record["services"].append(controlplane.agent_service(paths, scenario, gateway.name, token))
    write_json_atomic(paths.record, record)
    pid = supervisor_pid(paths)
    if pid is None:
        raise LabError("the lab supervisor died; see " + str(paths.logs / "supervisor.log"))
    os.kill(pid, signal.SIGHUP)

    progress("starting the gateway agents: they join, learn their VMs and exchange endpoints")
    total_vms = len(vms(scenario))
    agents = {g.name for site in scenario.sites if site.kind == "cloudgw" for g in site_gateways(site)}
    wait_until(lambda: _all_joined_and_applied(client, agents), timeout, "every gateway to join and apply its document")
    wait_until(
        lambda: sum(e["effective"] for e in client.endpoints()["items"]) >= total_vms,
        timeout,
        f"all {total_vms} VMs to be learned and announced",
    )
    wait_until(lambda: _all_joined_and_applied(client, agents), timeout, "every gateway to apply the full mapping")
    progress("waiting for the tunnels (first WireGuard handshakes)")
    for site in scenario.sites:
        for other in scenario.sites:
            if other is site or "external" in (site.kind, other.kind):
                continue
            for here, there in ((g, o) for g in site_gateways(site) for o in site_gateways(other)):
                wait_until(
                    lambda h=here, t=there: ping(paths.namespace(h.name), str(t.lan_address), attempts=1)[0],
                    timeout,
                    f"tunnel {here.name} -> {there.name}",
                )
    if any(site.standby is not None for site in scenario.sites):
        progress("waiting for each HA pair to agree on its active gateway")
        wait_until(lambda: _pairs_settled(client, scenario), timeout, "one active gateway in each pair")


def _pairs_settled(client: Client, scenario: Scenario) -> bool:
    gateways = {g["name"]: g for g in client.list("gateways")}
    for site in scenario.sites:
        if site.standby is None:
            continue
        roles = [gateways.get(g.name, {}).get("role") for g in site_gateways(site)]
        if roles.count("active") != 1:
            return False
    return True


def _service_port(paths: LabPaths, node: str, index: int) -> int | None:
    data = read_json(paths.supervisor) or {}
    ports = data.get("services", {}).get(node, {}).get("ports", [])
    return int(ports[index]) if len(ports) > index else None


def _healthy(client: Client) -> bool:
    try:
        client.request("GET", "/healthz")
        return True
    except CloudgwError:
        return False


def _all_joined_and_applied(client: Client, agents: set[str]) -> bool:
    """Every gateway that runs an agent (an external site's router runs none) joined and applied."""
    try:
        gateways = [g for g in client.list("gateways") if g["name"] in agents]
    except CloudgwError:
        return False
    return bool(gateways) and all(g["public_key"] and g["applied_revision"] == g["doc_revision"] for g in gateways)


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


def set_service_enabled(paths: LabPaths, node: str, enabled: bool, timeout: float = 20.0) -> int | None:
    """Stop a lab service and keep it stopped, or start it again. Returns the running pid (or None)."""
    record = paths.read_record()
    if record is None:
        raise LabError(f"lab '{paths.name}' is not up")
    if node not in {s["node"] for s in record["services"]}:
        names = ", ".join(s["node"] for s in record["services"])
        raise LabError(f"'{node}' is not a service of lab '{paths.name}'; services are: {names}")
    disabled = set(record.get("disabled", []))
    (disabled.discard if enabled else disabled.add)(node)
    record["disabled"] = sorted(disabled)
    write_json_atomic(paths.record, record)
    pid = supervisor_pid(paths)
    if pid is None:
        raise LabError("the lab supervisor is not running; run `cloudgw lab down` and `cloudgw lab up`")
    os.kill(pid, signal.SIGHUP)

    def settled() -> tuple[int | None] | None:
        service = (read_json(paths.supervisor) or {}).get("services", {}).get(node, {})
        running = service.get("pid")
        if service.get("disabled") == (not enabled) and (alive(running) if enabled else running is None):
            return (running,)
        return None

    return wait_until(settled, timeout, f"{node} to {'start' if enabled else 'stop'}")[0]  # type: ignore[no-any-return]


def all_vms(paths: LabPaths, scenario: Scenario) -> list[Vm]:
    """The scenario's VMs and those added with `cloudgw lab vm add`."""
    from ipaddress import IPv4Address

    from cloudgw.lab.scenario import vm_mac

    added = [
        Vm(v["name"], v["site"], IPv4Address(v["address"]), vm_mac(IPv4Address(v["address"]))) for v in extra_vms(paths)
    ]
    return vms(scenario) + added


def extra_vms(paths: LabPaths) -> list[dict[str, Any]]:
    record = paths.read_record() or {}
    return list(record.get("extra_vms", []))


def add_vm(paths: LabPaths, scenario: Scenario, site: str, address: str | None = None) -> tuple[str, str, float]:
    """Boot a new VM at a site: returns (name, address, time its interface came up)."""
    from ipaddress import IPv4Address

    from cloudgw.lab.scenario import vm_mac, vm_name

    sites = {s.name: s for s in scenario.sites}
    if site not in sites:
        raise LabError(f"no site '{site}' in this lab; sites are: {', '.join(sites)}")
    used = {str(vm.address) for vm in vms(scenario)} | {v["address"] for v in extra_vms(paths)}
    if address is None:
        free = [a for a in sites[site].pool.addresses() if str(a) not in used]
        if not free:
            raise LabError(f"site '{site}''s lab pool {sites[site].pool} is full; pass --address")
        address = str(free[0])
    if address in used:
        raise LabError(f"{address} is already a VM of this lab")
    ip = IPv4Address(address)
    if ip not in scenario.network.cidr:
        raise LabError(f"{address} is outside the lab network {scenario.network.cidr}")
    name = vm_name(site, ip, scenario.network.cidr)
    up_at = topology.add_vm(paths, scenario, name, site, ip, vm_mac(ip), create=True)
    record = paths.read_record() or {}
    record.setdefault("extra_vms", []).append({"name": name, "site": site, "address": address})
    write_json_atomic(paths.record, record)
    return name, address, up_at


def move_vm(paths: LabPaths, scenario: Scenario, name: str, site: str) -> float:
    """Move a VM to another site, as a live migration between clouds does: same MAC, same address;
    its port leaves one site's LAN and appears on the other's, and it announces itself with a
    gratuitous ARP there. Only L2 networks follow it (docs/l2.md). Returns when its port came up."""
    record = paths.read_record() or {}
    moved: dict[str, str] = dict(record.get("moved", {}))
    found = next((vm for vm in all_vms(paths, scenario) if vm.name == name), None)
    if found is None:
        raise LabError(f"no VM '{name}' in lab '{paths.name}'")
    sites = {s.name: s for s in scenario.sites if s.kind == "cloudgw"}
    if site not in sites:
        raise LabError(f"no site '{site}' in this lab; sites are: {', '.join(sites)}")
    if moved.get(name, found.site) == site:
        raise LabError(f"'{name}' is at site '{site}' already")
    with Netlink(paths.namespace(name)) as host:
        host.delete_link("eth0")  # the veth pair goes, and with it the port on the old site's switch
    up_at = topology.add_vm(paths, scenario, name, site, found.address, found.mac, create=False)
    moved[name] = site
    record["moved"] = moved
    write_json_atomic(paths.record, record)
    return up_at


def delete_vm(paths: LabPaths, name: str) -> None:
    record = paths.read_record() or {}
    extras = [v for v in record.get("extra_vms", []) if v["name"] != name]
    if len(extras) == len(record.get("extra_vms", [])):
        raise LabError(f"'{name}' is not a VM added with `cloudgw lab vm add` (the scenario's VMs stay)")
    namespace = paths.namespace(name)
    stop_pids(processes_in([namespace]), timeout=5)
    remove_namespace(namespace)
    record["extra_vms"] = extras
    write_json_atomic(paths.record, record)


def _gateway_node(paths: LabPaths, node: str) -> Scenario:
    scenario = load_lab_scenario(paths)
    gateways = [g.name for site in scenario.sites for g in site_gateways(site)]
    if node not in gateways:
        raise LabError(f"'{node}' is not a gateway of lab '{paths.name}'; gateways are: {', '.join(gateways)}")
    return scenario


def fail_gateway(paths: LabPaths, node: str, timeout: float = 20.0) -> list[str]:
    """Cut a gateway off like a power cut: its links go down, then every process in its namespace
    (the agent, wireguard-go) is killed with SIGKILL, and the supervisor keeps the agent stopped.
    Returns the links taken down."""
    _gateway_node(paths, node)
    record = paths.read_record() or {}
    failed = dict(record.get("failed", {}))
    if node in failed:
        raise LabError(f"'{node}' is already failed; `cloudgw lab heal {node}` brings it back")
    namespace = paths.namespace(node)
    with Netlink(namespace) as link:
        links = [info.name for info in link.links() if info.up and info.name != "lo"]
        for name in links:
            link.set_link(name, up=False)
    failed[node] = links
    record["failed"] = failed
    record["disabled"] = sorted({*record.get("disabled", []), node})
    write_json_atomic(paths.record, record)  # before the kill: the supervisor must not restart it
    for pid in processes_in([namespace]):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    set_service_enabled(paths, node, False, timeout)
    return links


def heal_gateway(paths: LabPaths, node: str, timeout: float = 20.0) -> int | None:
    """Bring a failed gateway back: its links up, its agent started (it comes back as standby)."""
    _gateway_node(paths, node)
    record = paths.read_record() or {}
    failed = dict(record.get("failed", {}))
    if node not in failed:
        raise LabError(f"'{node}' is not failed (`cloudgw lab fail {node}` fails it)")
    with Netlink(paths.namespace(node)) as link:
        for name in failed[node]:
            if link.link(name) is not None:
                link.set_link(name, up=True)
    topology.restore_default_route(load_lab_scenario(paths), paths, node)  # the kernel dropped it with the link
    del failed[node]
    record["failed"] = failed
    write_json_atomic(paths.record, record)
    return set_service_enabled(paths, node, True, timeout)
