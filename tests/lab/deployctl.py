"""A stand-in for `systemctl` on a test "machine" (a network namespace with its own file-system root),
used by test_deploy_doc.py: the commands of docs/deploy.md run unchanged, and `systemctl enable --now
UNIT` starts the unit's ExecStart with its EnvironmentFile, as systemd would.

    python -m tests.lab.deployctl HOSTROOT daemon-reload | enable --now UNIT | status UNIT

Absolute paths of the real machine (/etc, /var/lib/cloudgw, /run/cloudgw, /root, /opt/cloudgw/.venv)
are placed under HOSTROOT, in the unit and in its environment file. Test-only code.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

CLOUDGW = str(Path(sys.executable).parent / "cloudgw")


def rooted(text: str, root: str) -> str:
    """The machine's absolute paths, moved under its test root."""
    text = text.replace("/opt/cloudgw/.venv/bin/cloudgw", CLOUDGW)
    return re.sub(r"(?<![\w./])/(etc|var/lib/cloudgw|run/cloudgw|root)(?=/|\b)", lambda m: f"{root}/{m.group(1)}", text)


def unit_file(root: str, unit: str) -> tuple[Path, str]:
    units = Path(root) / "etc/systemd/system"
    if "@" in unit:
        template, instance = unit.split("@", 1)
        instance = instance.removesuffix(".service")
        return units / f"{template}@.service", instance
    return units / (unit if unit.endswith(".service") else f"{unit}.service"), ""


def parse_unit(path: Path, instance: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values.setdefault(key.strip(), []).append(value.strip().replace("%i", instance))
    return values


def environment(files: list[str], root: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for spec in files:
        optional = spec.startswith("-")
        path = Path(rooted(spec.lstrip("-"), root))
        if not path.exists():
            if optional:
                continue
            raise SystemExit(f"EnvironmentFile {path} is missing")
        for line in path.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                env[key.strip()] = rooted(value.strip().strip('"'), root)
    return env


def start(root: str, unit: str) -> None:
    path, instance = unit_file(root, unit)
    if not path.exists():
        raise SystemExit(f"Unit {unit} not found (copy it to /etc/systemd/system first)")
    values = parse_unit(path, instance)
    command = shlex.split(rooted(values["ExecStart"][-1], root))
    env = {**os.environ, **environment(values.get("EnvironmentFile", []), root)}
    logs = Path(root) / "journal"
    logs.mkdir(parents=True, exist_ok=True)
    name = unit.removesuffix(".service")
    with open(logs / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    (logs / f"{name}.pid").write_text(str(process.pid))
    print(f"started {unit} (pid {process.pid})")


def main(argv: list[str]) -> None:
    root, *args = argv
    verb = args[0] if args else ""
    if verb == "daemon-reload":
        return
    if verb == "enable" and "--now" in args:
        for unit in (a for a in args[1:] if a != "--now"):
            start(root, unit)
        return
    if verb == "start":
        for unit in args[1:]:
            start(root, unit)
        return
    raise SystemExit(f"deployctl: '{' '.join(args)}' is not emulated")


if __name__ == "__main__":
    main(sys.argv[1:])
