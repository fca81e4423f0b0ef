"""An external site in the lab (`--scenario external`): a branch office whose router runs no cloudgw.
The test follows docs/external.md as an admin would: the key is made on the router with stock `wg`,
its public half given to cloudgw, the exported commands run with stock wireguard-go, wg and ip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudgw.lab.controlplane import lab_client
from cloudgw.lab.scenario import vms
from tests.helpers import RUN_TAG, run, wait_for
from tests.lab.conftest import Lab, running_lab

HOST = "10.50.0.10"


@pytest.fixture(scope="module")
def branch_lab() -> Iterator[Lab]:
    with running_lab(f"cgwe{RUN_TAG}", "external") as lab:
        yield lab


def cloudgw(lab: Lab, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The admin's CLI, pointed at the lab's controller (as `cloudgw lab env` does)."""
    env = {**os.environ, "CLOUDGW_LAB": lab.name}
    for key in ("CLOUDGW_URL", "CLOUDGW_TOKEN", "CLOUDGW_CA", "CLOUDGW_CONFIG"):
        env.pop(key, None)
    return run([sys.executable, "-m", "cloudgw", *args], env=env, check=check)


def configure_router(lab: Lab, workdir: Path) -> tuple[str, str]:
    """docs/external.md, step by step, on the branch router. Returns (interface, exported text)."""
    router = lab.ns("branch-rtr")
    interface, key = f"wgx{RUN_TAG}", workdir / "router.key"
    # 1. the key is made on the router and never leaves it
    run(["sh", "-c", f"umask 077; wg genkey > {key}"], netns=router)
    public = run(["wg", "pubkey"], netns=router, input=key.read_text()).stdout.strip()
    cloudgw(lab, "gateway", "update", "branch-rtr", "--public-key", public)
    # 2. the configuration, as commands (a router without wg-quick)
    out = workdir / "branch.sh"
    cloudgw(lab, "site", "export-config", "branch", "--format", "commands", "--interface", interface,
            "--key-file", str(key), "-o", str(out))  # fmt: skip
    text = out.read_text()
    # 3. on the router: forwarding on, then every command; this kernel has no WireGuard module, so the
    #    first one is wireguard-go, as the export's own comment says
    run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], netns=router)
    for line in text.splitlines():
        command = line.split("#", 1)[0].strip()
        if not command:
            continue
        if command.startswith("ip link add"):
            assert f"wireguard-go {interface}" in line
            run(["wireguard-go", interface], netns=router)
        else:
            run(["sh", "-c", command], netns=router)
    return interface, text


def test_a_stock_router_configured_from_the_export_reaches_every_vm_and_back(branch_lab, tmp_path):
    interface, text = configure_router(branch_lab, tmp_path)
    # the export holds public keys and addresses, never a secret of any site
    assert "PrivateKey" not in text and "private-key" in text  # the router's own key file, by path
    for gateway in ("private-gw", "public-gw"):
        secret = (branch_lab.paths.node_dir(gateway) / "state" / "private.key").read_text().strip()
        assert secret not in text
    token = (branch_lab.paths.root / "cli.json").read_text()
    assert "cgw_" not in text and token not in text
    host = branch_lab.ns("branch-host1")
    machines = vms(branch_lab.scenario)
    for vm in machines:  # the first packets start the handshakes: allow a moment
        wait_for(
            lambda v=vm: run(["ping", "-c", "1", "-W", "1", str(v.address)], netns=host, check=False).returncode == 0,
            20,
            what=f"branch host -> {vm.name}",
        )
    for vm in machines:
        run(["ping", "-c", "2", "-W", "2", HOST], netns=branch_lab.ns(vm.name))
    shown = run(["wg", "show", interface, "latest-handshakes"], netns=branch_lab.ns("branch-rtr")).stdout
    assert len([line for line in shown.splitlines() if line.split()[-1] != "0"]) == 2  # both peers


def test_forged_sources_from_the_branch_are_dropped(branch_lab):
    router = branch_lab.ns("branch-rtr")
    wait_for(
        lambda: (
            run(["ping", "-c", "1", "-W", "1", "-I", "10.50.0.1", "192.168.1.1"], netns=router, check=False).returncode
            == 0
        ),
        20,
        what="the router's own address reaching private-vm1 (the legitimate case)",
    )
    # a source outside what the mapping gives the branch: a private VM's address, and another network
    for forged in ("192.168.1.5", "10.99.0.1"):
        run(["ip", "addr", "add", f"{forged}/32", "dev", "lo"], netns=router)
        try:
            result = run(["ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", forged, "192.168.1.1"], netns=router,
                         check=False)  # fmt: skip
            assert result.returncode != 0 and " 0 received" in result.stdout, result.stdout
        finally:
            run(["ip", "addr", "del", f"{forged}/32", "dev", "lo"], netns=router, check=False)
    # and the cloudgw side still answers the router's real network
    run(["ping", "-c", "1", "-W", "2", "-I", "10.50.0.1", "192.168.1.1"], netns=router)


def test_a_routed_network_behind_a_router_on_a_cloudgw_sites_lan(branch_lab):
    """A partner network behind a router on the private cloud's LAN (routed: 10.60.0.0/16 via
    192.168.1.240): the public site's VMs reach it and are reached; a source outside it is dropped."""
    paths = branch_lab.paths
    router, host, switch = paths.namespace("private-rtr"), paths.namespace("private-net1"), branch_lab.ns("private-lan")
    for namespace in (router, host):
        run(["ip", "netns", "add", namespace])
    try:
        run(["ip", "link", "add", "lan0", "netns", router, "type", "veth", "peer", "name", "rtr1", "netns", switch])
        run(["ip", "-n", switch, "link", "set", "rtr1", "master", "br0", "up"])
        run(["ip", "link", "add", "net0", "netns", router, "type", "veth", "peer", "name", "eth0", "netns", host])
        for namespace, device, address in ((router, "lan0", "192.168.1.240/24"), (router, "net0", "10.60.0.1/24"),
                                           (host, "eth0", "10.60.0.10/24")):  # fmt: skip
            run(["ip", "-n", namespace, "addr", "add", address, "dev", device])
            run(["ip", "-n", namespace, "link", "set", device, "up"])
        run(["ip", "-n", host, "route", "add", "default", "via", "10.60.0.1"])
        run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], netns=router)
        cloudgw(branch_lab, "site", "update", "private", "--routed", "10.60.0.0/16", "--routed-via", "192.168.1.240")
        vm = branch_lab.ns("public-vm11")
        wait_for(
            lambda: run(["ping", "-c", "1", "-W", "1", "10.60.0.10"], netns=vm, check=False).returncode == 0,
            30,
            what="public-vm11 -> 10.60.0.10 (behind the private LAN's router)",
        )
        run(["ping", "-c", "2", "-W", "2", "192.168.1.11"], netns=host)  # and back, from the partner network
        before = _spoofed(branch_lab)
        run(["ip", "-n", router, "addr", "add", "10.70.0.1/32", "dev", "lo"])
        forged = run(["ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", "10.70.0.1", "192.168.1.11"], netns=router,
                     check=False)  # fmt: skip
        assert forged.returncode != 0, forged.stdout
        wait_for(lambda: _spoofed(branch_lab) >= before + 3, 10, what="private-gw counting the forged packets")
    finally:
        with lab_client(paths) as client:
            client.update("sites", "private", {"routed": [], "routed_via": None})
        for namespace in (host, router):
            run(["ip", "netns", "del", namespace], check=False)


def _spoofed(lab: Lab) -> int:
    status = json.loads(lab.cli("status", "-o", "json").stdout)
    return next(g["counters"].get("lan_spoofed", 0) for g in status["gateways"] if g["node"] == "private-gw")
