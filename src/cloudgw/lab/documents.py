"""Gateway documents for a lab scenario when no controller runs (pure): a full mesh of peers, every
site's pool, and every other site's VMs as remote endpoints."""

from __future__ import annotations

from cloudgw.errors import InvalidInput
from cloudgw.lab.scenario import Scenario, vms
from cloudgw.model.document import (
    GatewayDocument,
    GatewaySpec,
    NetworkSpec,
    PeerSpec,
    PoolSpec,
    RemoteEndpoint,
    TunnelSpec,
    check_document,
)

LAN_IF = "lan0"
WAN_IF = "wan0"
TUNNEL_IF = "cgw0"


def lab_documents(scenario: Scenario, public_keys: dict[str, str], revision: int = 1) -> dict[str, GatewayDocument]:
    """Per gateway name, its document. public_keys maps gateway name -> WireGuard public key."""
    all_vms = vms(scenario)
    pools = [PoolSpec(site=site.name, range=site.pool) for site in scenario.sites]
    documents = {}
    for site in scenario.sites:
        gateway = site.gateway
        others = [other for other in scenario.sites if other.name != site.name]
        remote = [
            RemoteEndpoint(ip=vm.address, gateway=_gateway_of(scenario, vm.site), mac=vm.mac)
            for vm in all_vms
            if vm.site != site.name
        ]
        network = NetworkSpec(
            name=scenario.network.name,
            cidr=scenario.network.cidr,
            lan_interface=LAN_IF,
            lan_address=gateway.lan_address,
            pools=pools,
            remote_endpoints=remote,
        )
        peers = [
            PeerSpec(
                name=other.gateway.name,
                site=other.name,
                public_key=public_keys[other.gateway.name],
                endpoint=f"{other.gateway.public_address}:{other.gateway.listen_port}",
                lan_addresses=[other.gateway.lan_address],
            )
            for other in others
        ]
        doc = GatewayDocument(
            revision=revision,
            gateway=GatewaySpec(
                name=gateway.name,
                site=site.name,
                wan_interface=WAN_IF,
                tunnel=TunnelSpec(interface=TUNNEL_IF, listen_port=gateway.listen_port),
            ),
            networks=[network],
            peers=peers,
        )
        problems = check_document(doc)
        if problems:
            raise InvalidInput(problems, what=f"lab document for {gateway.name}")
        documents[gateway.name] = doc
    return documents


def _gateway_of(scenario: Scenario, site_name: str) -> str:
    return next(site.gateway.name for site in scenario.sites if site.name == site_name)
