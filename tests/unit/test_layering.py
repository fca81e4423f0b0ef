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
    "api": (
        "cloudgw.dataplane",
        "cloudgw.agent",
        "cloudgw.controller",
        "cloudgw.client",
        "cloudgw.lab",
        "cloudgw.cli",
        "cloudgw.mapping",
        "fastapi",
        "sqlalchemy",
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
    # the lab drives the controller through its CLI and API, and the kernel through the data plane
    "lab": ("cloudgw.controller", "cloudgw.cli"),
    "cli": (),  # per module below: admin commands talk REST only
    # the controller drives the providers; they see only the pure model and mapping
    "providers": (
        "cloudgw.agent",
        "cloudgw.controller",
        "cloudgw.dataplane",
        "cloudgw.lab",
        "cloudgw.cli",
        "cloudgw.client",
    ),
}
# the cloud SDKs: each imported by its own provider module and nowhere else
SDK_HOMES = {"boto3": "providers/aws.py", "botocore": "providers/aws.py", "openstack": "providers/openstack.py"}
# modules of the CLI that an admin's laptop runs: the REST client, never the controller, the agent,
# the data plane or the lab (those groups are loaded lazily, only for their own commands)
CLI_ADMIN = {
    "main.py",
    "config_commands.py",
    "operate.py",
    "nat.py",
    "connect.py",
    "output.py",
    "common.py",
    "clouds.py",
    "explain.py",
    "burst.py",
    "pages.py",
}
CLI_ADMIN_FORBIDDEN = ("cloudgw.controller", "cloudgw.agent", "cloudgw.dataplane", "cloudgw.lab", "pyroute2")


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


# the one exception: the lab's "cloud SDK" is the lab itself, used by its provider alone
EXCEPTIONS = {"providers/lab.py": ("cloudgw.lab",)}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_what_sits_above_it(package):
    bad = []
    for path in (SRC / package).rglob("*.py"):
        excused = EXCEPTIONS.get(str(path.relative_to(SRC)), ())
        for name in imports(path):
            forbidden = [f for f in FORBIDDEN[package] if f not in excused]
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert bad == []


def test_every_package_has_a_rule_and_every_rule_a_package():
    """A rule for a package that does not exist passes for nothing; a package without one is unchecked."""
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(FORBIDDEN), (packages - set(FORBIDDEN), set(FORBIDDEN) - packages)


@pytest.mark.parametrize("module", sorted(CLI_ADMIN))
def test_admin_commands_talk_rest_only(module):
    allowed = {"cloudgw.lab.location"}  # pure: where a running lab keeps the CLI's settings
    bad = [n for n in imports(SRC / "cli" / module) if n.startswith(CLI_ADMIN_FORBIDDEN) and n not in allowed]
    assert bad == []


def test_the_cli_root_imports_the_heavy_groups_lazily():
    names = imports(SRC / "cli" / "main.py")
    assert not {"cloudgw.cli.agent", "cloudgw.cli.lab", "cloudgw.cli.controller"} & names


def test_only_the_netlink_module_uses_pyroute2():
    """Netlink only in dataplane/netlink; the lab's namespace tooling may use pyroute2.netns (the
    files under /run/netns and setns), never its netlink sockets."""
    users = {}
    for path in SRC.rglob("*.py"):
        used = sorted(n for n in imports(path) if n.startswith("pyroute2"))
        if used:
            users[str(path.relative_to(SRC))] = used
    netlink = {u for u in users if u.startswith("dataplane/netlink/")}
    assert netlink and set(users) - netlink == {"lab/netns.py"}, users
    assert users["lab/netns.py"] == ["pyroute2"], users  # `from pyroute2 import netns` only
    assert "from pyroute2 import netns\n" in (SRC / "lab" / "netns.py").read_text()


def test_no_module_uses_a_cloud_sdk_outside_a_providers_package():
    """There is no providers package yet: then no module at all may import a cloud SDK."""
    users = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if any(n.startswith(("boto3", "botocore", "openstack")) for n in imports(p))
    ]
    allowed = ("providers/",) if (SRC / "providers").is_dir() else ()
    assert all(u.startswith(allowed) for u in users) if allowed else users == [], users


def test_every_module_imports():
    """The CLI loads some groups lazily: nothing else would import them in the unit tests, so a
    broken import there would only show when a user runs the command."""
    import importlib

    modules = [
        ".".join(("cloudgw", *path.relative_to(SRC).with_suffix("").parts))
        for path in SRC.rglob("*.py")
        if "migrations" not in path.parts and path.name != "__main__.py"
    ]
    failed = []
    for name in sorted(modules):
        try:
            importlib.import_module(name.removesuffix(".__init__"))
        except Exception as exc:  # any failure to import is the finding
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    assert failed == []


def test_only_the_provider_modules_import_the_cloud_sdks():
    bad = []
    for path in SRC.rglob("*.py"):
        for name in imports(path):
            root = name.split(".")[0]
            if root in SDK_HOMES and str(path.relative_to(SRC)) != SDK_HOMES[root]:
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert bad == []
