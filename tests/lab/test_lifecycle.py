"""Lab lifecycle with the three-site scenario: a full mesh works, and `lab down` leaves nothing."""

from __future__ import annotations

import json
import os

import pytest

from cloudgw.lab.netns import list_namespaces
from cloudgw.procs import proc_cmdline
from tests.helpers import RUN_TAG, reap_zombie_children, run
from tests.lab.conftest import start_lab

pytestmark = [pytest.mark.root, pytest.mark.lab]


def test_three_sites_then_down_leaves_no_namespace_process_or_mount():
    name = f"cgwu{RUN_TAG}"
    lab = start_lab(name, "three-sites")
    try:
        report = json.loads(lab.cli("check", "-o", "json").stdout)
        assert report["pairs"] == 12 * 8 and report["failed"] == 0
        lab_dir = str(lab.paths.root)
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and lab_dir in proc_cmdline(int(p))]
        assert pids, "agents should be running"
    finally:
        down = lab.cli("down", check=False)
    assert down.returncode == 0, down.stderr
    reap_zombie_children()
    assert [ns for ns in list_namespaces() if ns.startswith(f"{name}-")] == []
    assert not lab.paths.root.exists()
    still = [p for p in os.listdir("/proc") if p.isdigit() and lab_dir in proc_cmdline(int(p))]
    assert still == []
    with open("/proc/mounts") as mounts:
        assert lab_dir not in mounts.read()
    assert "is down" in lab.cli("down").stdout  # a second down is harmless


def test_up_twice_is_refused_without_damage():
    name = f"cgwv{RUN_TAG}"
    lab = start_lab(name, "three-sites")
    try:
        again = lab.cli("up", "--scenario", "three-sites", check=False)
        assert again.returncode == 1 and "already up" in again.stderr
        assert json.loads(lab.cli("check", "-o", "json").stdout)["failed"] == 0
    finally:
        lab.cli("down", check=False)
        reap_zombie_children()
    assert not [ns for ns in list_namespaces() if ns.startswith(f"{name}-")]
    assert run(["true"]).returncode == 0
