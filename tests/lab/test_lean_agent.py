"""A gateway carries only what it needs: `pip install .[agent]` in a fresh virtualenv has none of the
controller's packages, and the lab's agents run from it (the controller from the full install)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cloudgw.procs import proc_cmdline
from tests.helpers import RUN_TAG, reap_zombie_children
from tests.lab.conftest import start_lab

pytestmark = [pytest.mark.root, pytest.mark.lab]
REPO = Path(__file__).resolve().parents[2]
CONTROLLER_ONLY = ("fastapi", "uvicorn", "sqlalchemy", "alembic", "psycopg", "starlette")


@pytest.fixture(scope="module")
def lean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("lean") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", f"{REPO}[agent]"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return venv


def test_the_agent_install_has_no_controller_packages(lean):
    listed = subprocess.run([str(lean / "bin" / "pip"), "list", "--format", "json"], capture_output=True, text=True)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "cloudgw" in names and "pyroute2" in names
    assert not names & set(CONTROLLER_ONLY), names & set(CONTROLLER_ONLY)
    refused = subprocess.run([str(lean / "bin" / "cloudgw"), "controller", "serve"], capture_output=True, text=True)
    assert refused.returncode == 1 and "pip install 'cloudgw[controller]'" in refused.stderr
    size = sum(f.stat().st_size for f in (lean / "lib").rglob("*") if f.is_file())
    print(f"\nagent-only virtualenv: {size / 2**20:.0f} MiB, {len(names)} packages")


def test_the_lab_runs_with_agents_from_the_agent_install(lean, monkeypatch):
    monkeypatch.setenv("CLOUDGW_LAB_AGENT_PYTHON", str(lean / "bin" / "python"))
    lab = start_lab(f"cgwl{RUN_TAG}", "seed")
    try:
        report = json.loads(lab.cli("check", "-o", "json").stdout)
        assert report["failed"] == 0 and report["pairs"] == 200
        lab_dir = str(lab.paths.root)
        agents = [
            proc_cmdline(int(p))
            for p in os.listdir("/proc")
            if p.isdigit() and lab_dir in proc_cmdline(int(p)) and " agent run " in proc_cmdline(int(p))
        ]
        assert len(agents) == 2 and all(cmd.startswith(str(lean)) for cmd in agents), agents
    finally:
        lab.cli("down", check=False)
        reap_zombie_children()
