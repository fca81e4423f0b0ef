"""Regenerate the transcript in docs/cli.md: build the seed scenario by hand with the CLI against a
fresh controller on 127.0.0.1, and print every command with its real output (markdown).

    .venv/bin/python scripts/cli-walkthrough.py > /tmp/walkthrough.md
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLOUDGW = str(ROOT / ".venv" / "bin" / "cloudgw")

STEPS = [
    "cloudgw site add private --provider openstack --description 'the private cloud, full at peak'",
    "cloudgw site add public --provider aws",
    "cloudgw network add lab --cidr 192.168.1.0/24",
    "cloudgw pool add --network lab --site private --range 192.168.1.1-192.168.1.10",
    "cloudgw pool add --network lab --site public --range 192.168.1.0-192.168.1.20",
    "cloudgw pool add --network lab --site public --range 192.168.1.11-192.168.1.20",
    "cloudgw gateway add private-gw --site private --endpoint 203.0.113.10:51820 "
    "--lan-interface lan0 --wan-interface wan0 --lan-address 192.168.1.254",
    "cloudgw gateway add public-gw --site public --endpoint 203.0.113.20:51820 "
    "--lan-interface lan0 --wan-interface wan0 --lan-address 192.168.1.253",
    "cloudgw connection add --network lab --site-a private --site-b public",
    "cloudgw site list",
    "cloudgw pool list",
    "cloudgw connection list",
    "cloudgw gateway join-token public-gw",
    "cloudgw site delete public --yes",
    "cloudgw status",
    "cloudgw export",
    "cloudgw apply -f src/cloudgw/lab/scenarios/seed.topology.yaml",
    "cloudgw apply -f src/cloudgw/lab/scenarios/three-sites.topology.yaml --dry-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="cgw-walkthrough-"))
    init = subprocess.run(
        [CLOUDGW, "controller", "init", "--data-dir", str(data), "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
    )
    import json

    token = json.loads(init.stdout)["admin_token"]
    port = free_port()
    server = subprocess.Popen(
        [
            CLOUDGW,
            "controller",
            "serve",
            "--data-dir",
            str(data),
            "--listen",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        stderr=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "CLOUDGW_URL": f"https://127.0.0.1:{port}",
        "CLOUDGW_TOKEN": token,
        "CLOUDGW_CA": str(data / "ca.pem"),
        "COLUMNS": "110",
        "CLOUDGW_LAB": "cgwnolab",
        "CLOUDGW_CONFIG": str(data / "none.yaml"),
    }
    try:
        for _ in range(100):
            if (
                subprocess.run(
                    ["curl", "-s", "--cacert", str(data / "ca.pem"), f"https://127.0.0.1:{port}/healthz"],
                    capture_output=True,
                ).returncode
                == 0
            ):
                break
            time.sleep(0.1)
        for step in STEPS:
            args = shlex.split(step)
            result = subprocess.run([CLOUDGW, *args[1:]], env=env, capture_output=True, text=True, cwd=ROOT)
            text = (result.stdout + result.stderr).rstrip().replace(token, "cgw_…(admin token)…")
            print(f"```console\n$ {step}\n{text}\n```")
            if result.returncode:
                print(f"(exit code {result.returncode})\n")
            else:
                print()
    finally:
        server.terminate()
        server.wait()
        subprocess.run(["rm", "-rf", str(data)], check=False)


if __name__ == "__main__":
    sys.exit(main())
