"""Builders of small topologies for contract tests; every name carries the test's suffix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloudgw.agent.keys import generate_private_key, public_key_of
from cloudgw.client import Client


@dataclass
class World:
    uid: str
    a: str  # site names
    b: str
    network: str
    gw_a: str = ""
    gw_b: str = ""

    def pool(self, site: str) -> str:
        return f"{site}-{self.network}"


def make_world(api: Client, uid: str, provider_b: str = "aws", gateways: bool = False, connect: bool = False) -> World:
    world = World(uid, f"a-{uid}", f"b-{uid}", f"n-{uid}")
    api.create("sites", {"name": world.a, "provider": "openstack"})
    api.create("sites", {"name": world.b, "provider": provider_b})
    api.create("networks", {"name": world.network, "cidr": "192.168.1.0/24"})
    api.create("pools", {"network": world.network, "site": world.a, "range": "192.168.1.4-192.168.1.10"})
    api.create("pools", {"network": world.network, "site": world.b, "range": "192.168.1.11-192.168.1.20"})
    if gateways:
        world.gw_a, world.gw_b = f"gwa-{uid}", f"gwb-{uid}"
        api.create(
            "gateways",
            {
                "name": world.gw_a,
                "site": world.a,
                "endpoint": "203.0.113.10:51820",
                "lan_addresses": ["192.168.1.254"],
                "lan_interface": "lan0",
                "wan_interface": "wan0",
            },
        )
        api.create(
            "gateways",
            {"name": world.gw_b, "site": world.b, "endpoint": "203.0.113.20:51820", "lan_addresses": ["192.168.1.253"]},
        )
    if connect:
        api.create("connections", {"name": f"c-{uid}", "network": world.network, "site_a": world.a, "site_b": world.b})
    return world


def join(api: Client, controller: Any, gateway: str) -> tuple[str, str]:
    """Join a gateway as its agent would; returns (credential, public key)."""
    token = api.create("tokens", {"name": f"join-{gateway}", "role": "join", "gateway": gateway})["token"]
    public = public_key_of(generate_private_key())
    with controller.agent(token) as agent:
        answer = agent.join(public)
    return answer.credential, public


def revision(api: Client) -> int:
    return int(api.status()["revision"])
