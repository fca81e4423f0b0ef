"""The burst loop on a real State (SQLite) with a test clock, a real HTTP demand signal and drain
hook on 127.0.0.1, and a stand-in cloud that records every launch and termination: scale-out puts the
addresses in the mapping before the launch, a restart neither loses nor doubles a VM, an unreadable
signal changes nothing, scale-in drains (hook, grace) and gives the addresses back, and the VMs of a
deleted policy are terminated."""

from __future__ import annotations

import json
from ipaddress import IPv4Address

import pytest
from sqlalchemy import select

from cloudgw.controller.burstloop import BurstLoop
from cloudgw.controller.config_writes import apply_topology, operation
from cloudgw.controller.db.engine import make_engine, migrate
from cloudgw.controller.db.models import BurstDecisionRow, BurstVmRow
from cloudgw.controller.state import State
from cloudgw.model.topologyfile import TopologyFile
from cloudgw.providers.base import ProviderError, VmSpec
from tests.burst.test_signals import Exporter


class Cloud:
    """A stand-in cloud: what it runs, what it was asked."""

    def __init__(self) -> None:
        self.vms: dict[IPv4Address, str] = {}
        self.launches: list[VmSpec] = []
        self.terminated: list[str] = []
        self.fail_launch = False

    def launch_vm(self, vm: VmSpec) -> str:
        if self.fail_launch:
            raise ProviderError("the cloud is down")
        self.launches.append(vm)
        self.vms[vm.ip] = f"i-{len(self.launches)}"
        return self.vms[vm.ip]

    def terminate_vm(self, instance: str) -> None:
        self.terminated.append(instance)
        self.vms = {ip: i for ip, i in self.vms.items() if i != instance}

    def list_vms(self, policy: str) -> dict[IPv4Address, str]:
        return dict(self.vms)


TOPOLOGY = {
    "sites": [{"name": "private"}, {"name": "public", "provider": "lab"}],
    "networks": [{"name": "lab", "cidr": "192.168.1.0/24"}],
    "pools": [
        {"network": "lab", "site": "private", "range": "192.168.1.1-192.168.1.10"},
        {"network": "lab", "site": "public", "range": "192.168.1.11-192.168.1.20"},
    ],
    "gateways": [
        {"name": "private-gw", "site": "private", "endpoint": "203.0.113.1:51820", "lan_addresses": ["192.168.1.254"]},
        {"name": "public-gw", "site": "public", "endpoint": "203.0.113.2:51820", "lan_addresses": ["192.168.1.253"]},
    ],
    "connections": [{"network": "lab", "site_a": "private", "site_b": "public"}],
}


@pytest.fixture
def world(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/controller.db")
    migrate(engine)
    state = State(engine)
    exporter = Exporter()
    exporter.answers["/demand"] = (200, b"0.5", 0.0)
    policy = {
        "name": "web",
        "network": "lab",
        "site": "public",
        "signal": {"kind": "http", "url": f"{exporter.url}/demand"},
        "scale_out_above": 0.8,
        "scale_in_below": 0.3,
        "max_vms": 4,
        "step": 2,
        "warmup": 10,
        "cooldown": 30,
        "drain_hook": f"{exporter.url}/drain",
        "drain_grace": 5,
        "template": {"image": "lab-vm", "size": "small"},
    }
    apply_topology(state, "test", TopologyFile.model_validate({**TOPOLOGY, "bursts": [policy]}))
    clock = {"now": 1_000_000.0}
    cloud = Cloud()
    loop = BurstLoop(state, lambda: True, lambda _site: cloud, clock=lambda: clock["now"])
    yield state, exporter, clock, cloud, loop
    exporter.close()
    engine.dispose()


def vms(state: State) -> dict[str, tuple[str | None, str]]:
    with state.session() as session:
        return {r.ip: (r.instance, r.state) for r in session.scalars(select(BurstVmRow))}


def decisions(state: State) -> list[str]:
    with state.session() as session:
        return [r.reason for r in session.scalars(select(BurstDecisionRow).order_by(BurstDecisionRow.id))]


def at(clock, loop, t: float) -> dict[str, str]:
    clock["now"] = 1_000_000.0 + t
    return loop.run_once()


def test_scale_out_mapping_first_then_launch_then_hold_at_the_maximum(world):
    state, exporter, clock, cloud, loop = world
    assert at(clock, loop, 0) == {"web": "demand 0.50 between 0.3 and 0.8: holding at 0"}
    exporter.answers["/demand"] = (200, b"0.91", 0.0)
    assert at(clock, loop, 5)["web"] == "demand 0.91 > 0.8 for 0 s of 10: holding at 0"
    assert at(clock, loop, 15)["web"] == "demand 0.91 > 0.8 for 10 s: +2 VMs"
    assert vms(state) == {"192.168.1.11": ("i-1", "running"), "192.168.1.12": ("i-2", "running")}
    assert [(str(v.ip), v.image, v.size, v.tags["cloudgw:burst"]) for v in cloud.launches] == [
        ("192.168.1.11", "lab-vm", "small", "web"),
        ("192.168.1.12", "lab-vm", "small", "web"),
    ]
    # in the mapping: the public gateway announces them with its cloud's VMs
    document = state.document("public-gw")
    assert [str(e.ip) for e in document.networks[0].cloud_endpoints] == ["192.168.1.11", "192.168.1.12"]
    at(clock, loop, 20)
    assert at(clock, loop, 30)["web"] == "demand 0.91 > 0.8 for 10 s: +2 VMs"
    assert len(vms(state)) == 4
    at(clock, loop, 35)
    assert at(clock, loop, 45)["web"] == "demand 0.91 > 0.8, at the maximum (4): holding at 4"
    at(clock, loop, 50)  # the same hold again: not recorded twice
    assert decisions(state) == [
        "demand 0.50 between 0.3 and 0.8: holding at 0",
        "demand 0.91 > 0.8 for 0 s of 10: holding at 0",
        "demand 0.91 > 0.8 for 10 s: +2 VMs",
        "demand 0.91 > 0.8 for 0 s of 10: holding at 2",
        "demand 0.91 > 0.8 for 10 s: +2 VMs",
        "demand 0.91 > 0.8 for 0 s of 10: holding at 4",
        "demand 0.91 > 0.8, at the maximum (4): holding at 4",
    ]


def test_a_restart_in_the_middle_of_a_scale_out_neither_loses_nor_doubles_a_vm(world):
    state, exporter, clock, cloud, loop = world
    exporter.answers["/demand"] = (200, b"0.95", 0.0)
    at(clock, loop, 0)
    cloud.fail_launch = True  # the controller "dies" after writing the rows, before the launches
    assert at(clock, loop, 10)["web"].startswith("cloud error: the cloud is down")
    assert vms(state) == {"192.168.1.11": (None, "pending"), "192.168.1.12": (None, "pending")}
    # one launch did go through before the crash: the cloud has .11, the rows do not know it
    cloud.fail_launch = False
    cloud.vms[IPv4Address("192.168.1.11")] = "i-early"
    restarted = BurstLoop(state, lambda: True, lambda _site: cloud, clock=lambda: clock["now"])
    at(clock, restarted, 11)
    assert vms(state) == {"192.168.1.11": ("i-early", "running"), "192.168.1.12": ("i-1", "running")}
    assert [str(v.ip) for v in cloud.launches] == ["192.168.1.12"]  # adopted .11, launched only .12


def test_an_unreadable_signal_changes_nothing_and_says_why(world):
    state, exporter, clock, cloud, loop = world
    exporter.answers["/demand"] = (503, b"maintenance", 0.0)
    said = at(clock, loop, 0)["web"]
    assert (
        said.startswith("signal unreadable (") and "answered 503: maintenance" in said and said.endswith("holding at 0")
    )
    assert vms(state) == {} and cloud.launches == []


def test_scale_in_drains_then_terminates_and_gives_the_addresses_back(world):
    state, exporter, clock, cloud, loop = world
    exporter.answers["/demand"] = (200, b"0.95", 0.0)
    exporter.answers["/drain"] = (200, b"ok", 0.0)
    at(clock, loop, 0)
    at(clock, loop, 10)
    assert len(vms(state)) == 2
    exporter.answers["/demand"] = (200, b"0.1", 0.0)
    at(clock, loop, 20)
    assert at(clock, loop, 50)["web"] == "demand 0.10 < 0.3 for 30 s: -2 VMs"
    assert {ip: s for ip, (_i, s) in vms(state).items()} == {"192.168.1.11": "draining", "192.168.1.12": "draining"}
    assert cloud.terminated == []  # the grace time first
    at(clock, loop, 56)
    assert vms(state) == {} and sorted(cloud.terminated) == ["i-1", "i-2"]
    assert state.document("public-gw").networks[0].cloud_endpoints == []  # out of the mapping too
    # the addresses are free again: the next scale-out takes .11 and .12 once more
    exporter.answers["/demand"] = (200, b"0.95", 0.0)
    at(clock, loop, 60)
    at(clock, loop, 70)
    assert sorted(vms(state)) == ["192.168.1.11", "192.168.1.12"]


def test_the_vms_of_a_deleted_policy_are_terminated(world):
    state, exporter, clock, cloud, loop = world
    exporter.answers["/demand"] = (200, b"0.95", 0.0)
    at(clock, loop, 0)
    at(clock, loop, 10)
    operation("bursts", "delete")(state, "test", "web")
    assert at(clock, loop, 20) == {}
    assert vms(state) == {} and sorted(cloud.terminated) == ["i-1", "i-2"]


def test_status_and_history_through_the_api(tmp_path):
    """The routes read what the loop wrote (a running controller; its own loop idles at 5 s)."""
    from tests.controllers import start_controller

    controller = start_controller(tmp_path, f"sqlite:///{tmp_path}/controller.db")
    try:
        with controller.client() as api:
            api.json("PUT", "/api/v1/topology", json=TOPOLOGY)
            policy = {
                "name": "web",
                "network": "lab",
                "site": "public",
                "signal": {"kind": "pool", "pool": "private-lab"},
                "scale_out_above": 0.8,
                "scale_in_below": 0.3,
                "max_vms": 2,
                "template": {"image": "lab-vm", "size": "small"},
            }
            api.create("bursts", policy)
            status = api.json("GET", "/api/v1/bursts/web/status")
            assert status["vms"] == [] and status["policy"] == "web"
            history = api.json("GET", "/api/v1/bursts/web/history", params={"limit": 5})
            assert history["next_cursor"] is None and isinstance(history["items"], list)
            assert json.dumps(status)  # plain JSON
    finally:
        controller.stop()
