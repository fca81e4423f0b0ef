"""docs/deploy.md, followed literally: its marked blocks run in order on namespaces standing in for a
controller host and three gateway VMs (each with its own file-system root), the units run as systemd
would run them (tests/lab/deployctl.py), and the deployment must end with traffic between every pair
of sites. A command that does not work as written fails this test."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloudgw.lab import lab as lablib
from cloudgw.lab import topology
from cloudgw.lab.runstate import LabPaths
from cloudgw.lab.scenario import find_scenario
from tests.helpers import RUN_TAG, reap_zombie_children, run, wait_for
from tests.lab.deployctl import rooted

pytestmark = [pytest.mark.root, pytest.mark.lab]
REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "deploy.md"
GATEWAYS = ("paris-gw", "berlin-gw", "madrid-gw")
MARK = re.compile(r"<!-- deploy-test: (?P<role>[a-z]+)(?: (?P<arg>[^ \n]+))?[^\n]*?-->\n```\w*\n(?P<body>.*?)```", re.S)


@dataclass
class Block:
    role: str
    arg: str | None
    body: str


def blocks() -> list[Block]:
    return [Block(m["role"], m["arg"], m["body"]) for m in MARK.finditer(GUIDE.read_text())]


def variables(body: str) -> dict[str, str]:
    found = {}
    for line in body.splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, value = line.split("=", 1)
            found[key] = value
    return found


PRELUDE = """set -euo pipefail
sudo() { "$@"; }
systemctl() { python -m tests.lab.deployctl "$HOSTROOT" "$@"; }
cd "$HOSTROOT/opt/cloudgw"
"""


class Machine:
    def __init__(self, name: str, namespace: str, root: Path) -> None:
        self.name, self.namespace, self.root = name, namespace, root
        for sub in ("etc/systemd/system", "root", "opt/cloudgw", "var/lib", "run"):  # as on a fresh Debian
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "opt/cloudgw/deploy").symlink_to(REPO / "deploy")

    def sh(self, body: str, env: dict[str, str]) -> str:
        script = PRELUDE + rooted(body, str(self.root))
        full_env = {
            **os.environ,
            **env,
            "HOSTROOT": str(self.root),
            "HOME": str(self.root / "root"),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "PYTHONPATH": str(REPO),
        }
        result = run(["bash", "-c", script], netns=self.namespace, env=full_env, timeout=120, check=False)
        assert result.returncode == 0, f"on {self.name}:\n{body}\nfailed: {result.stderr}{result.stdout}"
        return result.stdout

    def stop_units(self) -> None:
        for pid_file in (self.root / "journal").glob("*.pid"):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid_file.read_text()), signal.SIGTERM)


@pytest.fixture
def sites(tmp_path):
    scenario = find_scenario("three-sites")
    paths = LabPaths(f"cgwd{RUN_TAG}")
    machines: dict[str, Machine] = {}
    try:
        topology.build(scenario, paths)
        for name in ("controller", *GATEWAYS):
            machines[name] = Machine(name, paths.namespace(name), tmp_path / "hosts" / name)
        yield machines
    finally:
        for machine in machines.values():
            machine.stop_units()
        lablib.down(paths)
        reap_zombie_children()
        shutil.rmtree(tmp_path / "hosts", ignore_errors=True)


def journals(sites: dict[str, Machine]) -> str:
    """The last lines each unit logged, to say why a deployment did not converge."""
    parts = []
    for machine in sites.values():
        for log in sorted((machine.root / "journal").glob("*.log")):
            parts.append(f"--- {machine.name} {log.name}\n" + "\n".join(log.read_text().splitlines()[-15:]))
    return "\n".join(parts)


def healthy(controller: Machine) -> bool:
    probe = ["curl", "-s", "--cacert", str(controller.root / "var/lib/cloudgw/controller/ca.pem")]
    return (
        '"ok":true' in run([*probe, "https://127.0.0.1:8443/healthz"], netns=controller.namespace, check=False).stdout
    )


def converged(controller: Machine, env: dict[str, str]) -> bool:
    status = json.loads(controller.sh("cloudgw status -o json", env))
    gateways = status["gateways"]
    connections = status["connections"]
    return (
        len(gateways) == 3
        and all(g["online"] and g["applied_revision"] == g["doc_revision"] for g in gateways)
        and len(connections) == 3
        and all(c["health"]["state"] == "up" for c in connections)
    )


def test_the_deployment_guide_works_as_written(sites):
    env: dict[str, str] = {}
    tokens: dict[str, str] = {}
    controller = sites["controller"]
    for block in blocks():
        if block.role == "skip":
            continue
        if block.role == "vars":
            env.update(variables(block.body))
        elif block.role == "file":
            (controller.root / "opt/cloudgw" / str(block.arg)).write_text(block.body)
        elif block.role in ("controller", "admin"):
            out = controller.sh(block.body, env)
            for line in out.splitlines():
                if line.startswith("cgwj_"):
                    tokens[GATEWAYS[len(tokens)]] = line.strip()
            if "join-token" in block.body:
                assert len(tokens) == 3 and f"--controller https://{env['CONTROLLER']}:8443" in out
            if "cloudgw-controller" in block.body:
                wait_for(
                    lambda: (
                        controller.sh(
                            "cloudgw --url https://127.0.0.1:8443 --ca "
                            "/var/lib/cloudgw/controller/ca.pem --token x site list || true",
                            env,
                        )
                        is not None
                    ),
                    30,
                )
        elif block.role == "gateway":
            for gateway in GATEWAYS:
                out = sites[gateway].sh(block.body, {**env, "GATEWAY": gateway, "JOIN_TOKEN": tokens.get(gateway, "")})
                if "status.json" in block.body:
                    assert json.loads(out)["gateway"] == gateway
            if "enable --now" in block.body:
                try:
                    wait_for(lambda: converged(controller, env), 90, what="every gateway joined and connection up")
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\n{journals(sites)}") from None
        else:
            raise AssertionError(f"unknown deploy-test role {block.role!r} in {GUIDE}")
    assert {"vars", "controller", "admin", "gateway", "file"} <= {b.role for b in blocks()}
    # the env files hold the join token: 0600, as the guide says
    assert (sites["paris-gw"].root / "etc/cloudgw/paris-gw.env").stat().st_mode & 0o077 == 0
    for source, target in (("paris-vm1", "10.20.0.21"), ("berlin-vm21", "10.20.0.41"), ("madrid-vm41", "10.20.0.1")):
        ns = sites["controller"].namespace.replace("-controller", f"-{source}")
        wait_for(
            lambda n=ns, t=target: run(["ping", "-c", "1", "-W", "1", t], netns=n, check=False).returncode == 0,
            30,
            what=f"{source} -> {target}",
        )


def test_the_units_pass_systemd_analyze_verify(tmp_path):
    binary = shutil.which("systemd-analyze")
    assert binary, "systemd-analyze (Debian's systemd) is part of the machine image"
    units = []
    for unit in ("cloudgw-controller.service", "cloudgw-agent@.service"):
        text = (
            (REPO / "deploy" / unit)
            .read_text()
            .replace("/opt/cloudgw/.venv/bin/cloudgw", str(Path(sys.executable).parent / "cloudgw"))
        )
        (tmp_path / unit).write_text(text)
    (tmp_path / "cloudgw-agent@paris-gw.service").symlink_to(tmp_path / "cloudgw-agent@.service")
    units = [str(tmp_path / "cloudgw-controller.service"), str(tmp_path / "cloudgw-agent@paris-gw.service")]
    result = run([binary, "verify", "--man=no", *units], check=False)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
