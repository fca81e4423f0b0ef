"""DESIGN.md's dependency direction, checked on the imports of every module."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "cloudgw"

FORBIDDEN = {
    "model": (
        "cloudgw.dataplane",
        "cloudgw.agent",
        "cloudgw.controller",
        "cloudgw.client",
        "cloudgw.lab",
        "cloudgw.cli",
        "cloudgw.mapping",
    ),
    "mapping": (
        "cloudgw.dataplane",
        "cloudgw.agent",
        "cloudgw.controller",
        "cloudgw.client",
        "cloudgw.lab",
        "cloudgw.cli",
    ),
    "dataplane": ("cloudgw.agent", "cloudgw.controller", "cloudgw.client", "cloudgw.lab", "cloudgw.cli"),
    "agent": ("cloudgw.controller", "cloudgw.lab", "cloudgw.cli"),
    "client": ("cloudgw.controller", "cloudgw.agent", "cloudgw.dataplane", "cloudgw.lab", "cloudgw.cli"),
    "controller": ("cloudgw.agent", "cloudgw.dataplane", "cloudgw.lab", "cloudgw.cli"),
}


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_what_sits_above_it(package):
    bad = []
    for path in (SRC / package).rglob("*.py"):
        for name in imports(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[package]):
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert bad == []


def test_only_the_netlink_module_uses_pyroute2():
    users = sorted(
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if any(n.startswith("pyroute2") for n in imports(p))
    )
    assert users and all(u.startswith("dataplane/netlink/") for u in users), users


def test_only_providers_use_cloud_sdks():
    users = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if any(n.startswith(("boto3", "botocore", "openstack")) for n in imports(p))
    ]
    assert all(u.startswith("providers/") for u in users), users
