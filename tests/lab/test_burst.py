"""Burst in the lab, end to end: demand rises past the threshold (VMs boot in the private pool, a
pool-usage policy reads it), the controller rents VMs at the public site with pool addresses through
the lab's cloud (the supervisor boots them on the site's bridge), every private VM reaches them;
demand falls, after the cool-down they are drained and gone, and their addresses are free again."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest

from cloudgw.lab import controlplane
from cloudgw.lab import lab as lablib
from tests.helpers import RUN_TAG, wait_for
from tests.lab.conftest import running_lab

pytestmark = [pytest.mark.root, pytest.mark.lab]


def pings(lab, node: str, address: str) -> bool:
    done = subprocess.run(
        ["ip", "netns", "exec", lab.ns(node), "ping", "-c", "1", "-W", "1", address], capture_output=True, check=False
    )
    return done.returncode == 0


def public_vms(lab) -> dict[str, str]:
    return {v["address"]: v["name"] for v in lablib.extra_vms(lab.paths) if v["site"] == "public"}


def test_demand_rents_public_vms_that_join_the_subnet_and_go_away():
    with running_lab(f"cgwb{RUN_TAG}", "burst") as lab, controlplane.lab_client(lab.paths) as api:
        api.create(
            "bursts",
            {
                "name": "web",
                "network": "lab",
                "site": "public",
                "signal": {"kind": "pool", "pool": "private-lab"},
                "scale_out_above": 0.55,
                "scale_in_below": 0.45,
                "max_vms": 2,
                "step": 2,
                "warmup": 2,
                "cooldown": 5,
                "drain_grace": 1,
                "template": {"image": "lab-vm", "size": "small"},
            },
        )
        wait_for(lambda: api.json("GET", "/api/v1/bursts/web/status")["demand"] == 0.4, 60, what="demand 0.4 (4 of 10)")
        assert public_vms(lab) == {}
        # demand rises: two more private VMs (6 of 10 addresses in use)
        added = [lab.cli("vm", "add", "private").stdout for _ in range(2)]
        assert all("192.168.1." in text for text in added)
        wait_for(lambda: len(public_vms(lab)) == 2, 60, what="two burst VMs at the public site")
        assert sorted(public_vms(lab)) == ["192.168.1.12", "192.168.1.13"]  # .11 is the public site's own VM
        status = api.json("GET", "/api/v1/bursts/web/status")
        assert sorted(v["ip"] for v in status["vms"]) == ["192.168.1.12", "192.168.1.13"]
        # every private VM reaches them, through the gateways
        for private in ("private-vm1", "private-vm2", "private-vm3", "private-vm4"):
            for address in ("192.168.1.12", "192.168.1.13"):
                wait_for(lambda p=private, a=address: pings(lab, p, a), 30, what=f"{private} -> {address}")
        # the controller stops as if it died after the lab booted .13 but before it wrote the VM's
        # name down; restarted, it adopts that VM by its address instead of booting a second one
        lab.cli("stop", "controller")
        database = sqlite3.connect(controlplane.controller_dir(lab.paths) / "controller.db")
        with database:
            database.execute("update burst_vms set instance = null, state = 'pending' where ip = '192.168.1.13'")
        database.close()
        lab.cli("start", "controller")
        wait_for(
            lambda: (
                {v["ip"]: v["instance"] for v in api.json("GET", "/api/v1/bursts/web/status")["vms"]}.get(
                    "192.168.1.13"
                )
                == "public-vm13"
            ),
            60,
            what="the VM adopted after the restart",
        )
        assert sorted(public_vms(lab)) == ["192.168.1.12", "192.168.1.13"]  # none booted twice
        # demand falls: the two private VMs leave; after the cool-down the burst VMs go
        for name in [v["name"] for v in lablib.extra_vms(lab.paths) if v["site"] == "private"]:
            lab.cli("vm", "delete", name)
        wait_for(lambda: public_vms(lab) == {}, 90, what="the burst VMs to be drained and removed")
        wait_for(lambda: api.json("GET", "/api/v1/bursts/web/status")["vms"] == [], 30, what="their rows gone")
        history = [d["reason"] for d in api.json("GET", "/api/v1/bursts/web/history")["items"]]
        assert any(r.endswith(": +2 VMs") for r in history) and any(r.endswith(": -2 VMs") for r in history)
        # their addresses are out of the burst inventory (the public gateway may still announce
        # what it learned until it expires: a new VM then takes another free address)
        assert all(
            str(e.get("ip")) not in ("192.168.1.12", "192.168.1.13")
            for e in api.document("public-gw")["networks"][0]["cloud_endpoints"]
        )
