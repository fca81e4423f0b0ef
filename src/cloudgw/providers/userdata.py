"""A gateway's first boot (pure): cloud-init user-data that installs cloudgw and starts the agent
with a one-time join token. The token carries the controller CA's fingerprint, so the new gateway
pins the controller it joins; it is single-use and expires (24 h by default). The gateway makes its
WireGuard key on first start; the private key never leaves it. No cloud credential is in here."""

from __future__ import annotations

from importlib import resources

import yaml

UNIT = "cloudgw-agent@.service"
PACKAGES = ["python3-venv", "python3-pip", "nftables", "wireguard-tools", "wireguard-go", "iputils-ping"]


def agent_unit() -> str:
    return resources.files("cloudgw").joinpath("deploy", UNIT).read_text()


def user_data(gateway: str, site: str, controller_url: str, join_token: str, package: str = "cloudgw") -> str:
    """#cloud-config for a new gateway machine (Debian or Ubuntu)."""
    config = {
        "package_update": True,
        "packages": PACKAGES,
        "write_files": [
            {
                "path": f"/etc/cloudgw/{gateway}.env",
                "permissions": "0600",
                "owner": "root:root",
                "content": f"CLOUDGW_CONTROLLER={controller_url}\nCLOUDGW_JOIN_TOKEN={join_token}\n",
            },
            {"path": f"/etc/systemd/system/{UNIT}", "permissions": "0644", "content": agent_unit()},
        ],
        "runcmd": [
            ["install", "-d", "-m", "0755", "/opt/cloudgw"],
            ["python3", "-m", "venv", "/opt/cloudgw/.venv"],
            ["/opt/cloudgw/.venv/bin/pip", "install", "--quiet", package],
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", f"cloudgw-agent@{gateway}"],
        ],
    }
    header = (
        "#cloud-config\n"
        f"# cloudgw gateway '{gateway}' of site '{site}': installs cloudgw and joins {controller_url}\n"
        "# (made by `cloudgw gateway bootstrap`; the join token inside is single-use and expires)\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False, width=1000)
