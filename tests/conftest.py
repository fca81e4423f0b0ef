"""Shared fixtures. Tests that need root run for real in CI (which is root); outside CI, as non-root,
they are skipped with a reason, and in CI a non-root run fails instead of skipping silently."""

from __future__ import annotations

import ctypes
import os
import subprocess
from collections.abc import Iterator

import pytest

from cloudgw.lab.netns import list_namespaces, remove_namespace
from cloudgw.lab.runstate import processes_in
from cloudgw.procs import stop_pids
from tests.helpers import RUN_TAG, reap_zombie_children

NS_PREFIX = f"cgwt{RUN_TAG}-"
PR_SET_CHILD_SUBREAPER = 36


def pytest_configure(config: pytest.Config) -> None:
    # boto3 looks for credentials at the EC2 metadata address (169.254.169.254) when it finds none:
    # tests never send a packet outside the machine, so that lookup is off; clouds come from mocks
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ.setdefault("AWS_CONFIG_FILE", "/nonexistent/cloudgw-tests")
    os.environ.setdefault("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/cloudgw-tests")
    if os.geteuid() == 0:
        # Processes our tests start in the background (lab supervisors, wireguard-go) become our
        # children when their parent exits, so we can reap them: PID 1 here does not.
        ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    for item in items:
        if item.get_closest_marker("root"):
            if in_ci:
                item.add_marker(pytest.mark.xfail(reason="CI must run as root", strict=True, run=False))
            else:
                item.add_marker(pytest.mark.skip(reason="needs root (network namespaces); CI runs it as root"))


def _cleanup_namespaces(prefix: str) -> None:
    namespaces = [ns for ns in list_namespaces() if ns.startswith(prefix)]
    stop_pids(processes_in(namespaces), timeout=5)
    for namespace in namespaces:
        remove_namespace(namespace)


@pytest.fixture(scope="session", autouse=True)
def _session_cleanup() -> Iterator[None]:
    yield
    if os.geteuid() == 0:
        _cleanup_namespaces(NS_PREFIX)
        reap_zombie_children()


@pytest.fixture
def make_netns(request: pytest.FixtureRequest) -> Iterator[object]:
    """make_netns("gw") -> a fresh namespace named cgwt<tag>-<test>-gw; removed after the test, with
    every process still running inside it, even when the test fails."""
    created: list[str] = []
    counter = len(list_namespaces())

    def make(suffix: str) -> str:
        name = f"{NS_PREFIX}{request.node.name[:20]}-{suffix}-{counter}".replace("[", "-").replace("]", "")
        subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                name,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
            check=True,
        )
        created.append(name)
        return name

    yield make
    stop_pids(processes_in(created), timeout=5)
    for name in created:
        remove_namespace(name)
    reap_zombie_children()
