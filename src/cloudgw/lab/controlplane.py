"""The lab's control plane: initialise and reach its controller, and turn a scenario into a topology
(the same shape as a `cloudgw apply` file) that is created through the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from cloudgw.client import Client
from cloudgw.errors import LabError
from cloudgw.lab.runstate import LabPaths
from cloudgw.lab.scenario import LAN_BRIDGE, Scenario, builtin_topology, site_gateways
from cloudgw.lab.topology import CONTROLLER, CONTROLLER_PORT
from cloudgw.model.topologyfile import TopologyFile, from_topology, parse_file, to_topology

LAN_IF, WAN_IF = "lan0", "wan0"


def scenario_topology(scenario: Scenario) -> dict[str, Any]:
    """Sites, the network, pools, gateways and a full mesh of connections, as plain data."""
    network = scenario.network.name
    return {
        # every lab site is a `lab` site (namespaces, nothing to prepare, no cloud's reserved
        # addresses); what it stands for is said in its description
        "sites": [
            {
                "name": s.name,
                "provider": "lab",
                **({"description": f"the lab's {s.provider}"} if s.provider != "lab" else {}),
                **({"ha": {"addresses": [str(s.virtual_address)]}} if s.virtual_address else {}),
                **({"kind": "external", "routed": [str(s.routed)]} if s.kind == "external" else {}),
            }
            for s in scenario.sites
        ],
        "networks": [
            {
                "name": network,
                "cidr": str(scenario.network.cidr),
                **({"mode": "l2", "flood": scenario.network.flood} if scenario.network.mode == "l2" else {}),
            }
        ],
        "pools": [
            {"name": f"{s.name}-{network}", "network": network, "site": s.name, "range": str(s.pool)}
            for s in scenario.sites
            if s.pool is not None
        ],
        "gateways": [
            {
                "name": g.name,
                "site": s.name,
                "endpoint": f"{g.public_address}:{g.listen_port}",
                "wan_interface": WAN_IF,
                "lan_interface": LAN_BRIDGE if g.lan_bridge else LAN_IF,
                # an external router's LAN is its routed network, outside the stretched one
                "lan_addresses": [str(g.lan_address)] if s.kind == "cloudgw" else [],
                "listen_port": g.listen_port,
                **({"priority": g.priority} if g.priority != 100 else {}),
            }
            for s in scenario.sites
            for g in site_gateways(s)
        ],
        "connections": [
            {"network": network, "site_a": a.name, "site_b": b.name}
            for i, a in enumerate(scenario.sites)
            for b in scenario.sites[i + 1 :]
        ],
    }


def controller_dir(paths: LabPaths) -> Path:
    return paths.node_dir(CONTROLLER) / "data"


def controller_url(scenario: Scenario) -> str:
    """How gateways reach the controller: across the lab's WAN."""
    return f"https://{scenario.controller_address}:{CONTROLLER_PORT}"


def init_controller(paths: LabPaths, scenario: Scenario) -> dict[str, Any]:
    data = controller_dir(paths)
    result = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            paths.namespace(CONTROLLER),
            sys.executable,
            "-m",
            "cloudgw",
            "controller",
            "init",
            "--data-dir",
            str(data),
            "--san",
            str(scenario.controller_address),
            "--san",
            "127.0.0.1",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise LabError(f"controller init failed: {result.stderr.strip()}")
    info: dict[str, Any] = json.loads(result.stdout)
    return info


def controller_service(paths: LabPaths, scenario: Scenario) -> dict[str, Any]:
    data = controller_dir(paths)
    return {
        "node": CONTROLLER,
        "namespace": paths.namespace(CONTROLLER),
        # CLOUDGW_LAB: its `lab` sites can boot VMs (burst policies) through the lab supervisor
        "command": [
            "env",
            f"CLOUDGW_LAB={paths.name}",
            "CLOUDGW_BURST_INTERVAL=1",
            sys.executable,
            "-m",
            "cloudgw",
            "controller",
            "serve",
            "--data-dir",
            str(data),
        ],
        "sockets": [
            {"netns": paths.namespace(CONTROLLER), "host": str(scenario.controller_address), "port": CONTROLLER_PORT},
            {"netns": None, "host": "127.0.0.1", "port": 0},
        ],
    }


def internet_service(paths: LabPaths) -> dict[str, Any]:
    from cloudgw.lab.topology import INTERNET

    return {
        "node": INTERNET,
        "namespace": paths.namespace(INTERNET),
        "command": [sys.executable, "-m", "cloudgw.lab.internet", "--http", "80", "--udp", "7"],
    }


def agent_service(paths: LabPaths, scenario: Scenario, gateway: str, join_token: str) -> dict[str, Any]:
    node_dir = paths.node_dir(gateway)
    # CLOUDGW_LAB_AGENT_PYTHON runs the agents from another installation (a lean `cloudgw[agent]` one,
    # as on a real gateway) while the controller runs from this one
    python = os.environ.get("CLOUDGW_LAB_AGENT_PYTHON") or sys.executable
    return {
        "node": gateway,
        "namespace": paths.namespace(gateway),
        "command": [
            *(
                ["env", f"CLOUDGW_AGENT_EXPIRE_AFTER={scenario.agent.expire_after:g}"]
                if scenario.agent.expire_after
                else []
            ),
            python,
            "-m",
            "cloudgw",
            "agent",
            "run",
            "--controller",
            controller_url(scenario),
            "--token",
            join_token,
            "--state-dir",
            str(node_dir / "state"),
            "--run-dir",
            str(node_dir / "run"),
            "--wg-socket-dir",
            str(node_dir / "wg"),
            "--interval",
            str(scenario.agent.interval),
            "--probe-rate",
            str(scenario.agent.probe_rate),
            "--heartbeat",
            "2",
        ],
    }


def write_cli_config(paths: LabPaths, url: str, token: str) -> Path:
    """What `cloudgw` needs to talk to this lab's controller from the host (0600: holds a token)."""
    path = paths.root / "cli.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": url, "token": token, "ca": str(controller_dir(paths) / "ca.pem")}, handle)
    return path


def read_cli_config(paths: LabPaths) -> dict[str, str] | None:
    try:
        data: dict[str, str] = json.loads((paths.root / "cli.json").read_text())
        return data
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def lab_client(paths: LabPaths, timeout: float = 10.0) -> Client:
    config = read_cli_config(paths)
    if config is None:
        raise LabError(f"lab '{paths.name}' has no controller configuration (is it up?)")
    return Client(config["url"], token=config["token"], ca=config["ca"], timeout=timeout)


def lab_topology(scenario: Scenario) -> TopologyFile:
    """The topology the lab applies: the file shipped with a built-in scenario, which must describe
    the same sites, pools and gateways as the scenario's physical layout; else derived from it."""
    derived = from_topology(to_topology(TopologyFile.model_validate(scenario_topology(scenario))))
    shipped = builtin_topology(scenario.name)
    if shipped is None:
        return derived
    spec = from_topology(to_topology(parse_file(shipped, f"{scenario.name}.topology.yaml")))
    if spec != derived:
        raise LabError(
            f"{scenario.name}.topology.yaml does not describe the {scenario.name} scenario's sites, pools "
            "and gateways; regenerate it from the scenario"
        )
    return spec


def apply_topology(client: Client, spec: TopologyFile) -> dict[str, Any]:
    """What `cloudgw apply -f` does, in one call (the plan is applied in one transaction)."""
    result: dict[str, Any] = client.json("PUT", "/api/v1/topology", json=spec.model_dump(mode="json"))
    return result
