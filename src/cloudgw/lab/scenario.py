"""Lab scenarios: YAML data files, so three clouds or other pools need no code (pure).

Node names are a contract used by docs and scripts: a VM is `<site>-vm<N>` where N is its host number
in the network (192.168.1.11 in 192.168.1.0/24 is `public-vm11`); a gateway is named in the scenario
(`private-gw`); `wan` is the router between the clouds, `<site>-lan` a cloud's LAN switch, `internet`
the Internet host.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from cloudgw.errors import InvalidInput, Problem
from cloudgw.model.defaults import LISTEN_PORT
from cloudgw.model.fields import IPv4, Name, RangeField, StrictModel
from cloudgw.model.textio import parse_yaml, pydantic_problems

PUBLIC_NET = IPv4Network("203.0.113.0/24")  # documentation range: the lab's "public" addresses
LAN_BRIDGE = "br-lan"  # the gateway's LAN when the scenario bridges it (lan_bridge: true)


class LabGateway(StrictModel):
    name: Name
    lan_address: IPv4  # the gateway's own address on its cloud's LAN
    public_address: IPv4  # the floating / elastic IP, a 1:1 NAT of its WAN address on the `wan` router
    listen_port: int = Field(LISTEN_PORT, ge=1, le=65535)
    lan_bridge: bool = False  # the gateway's LAN is a bridge (br-lan) in its own namespace, bridge netfilter on
    priority: int = Field(100, ge=1, le=255)  # of an HA pair, the higher is preferred as the active one


class LabSite(StrictModel):
    name: Name
    # what the site stands for; the controller sees a `lab` site either way (the description says which)
    provider: Literal["openstack", "aws", "lab"] = "lab"
    # external: a stock WireGuard router and hosts in a routed prefix, no agent (docs/external.md);
    # the lab builds it but configures nothing on the router: that is the admin's part
    kind: Literal["cloudgw", "external"] = "cloudgw"
    pool: RangeField | None = None  # a cloudgw site's VMs' addresses in the stretched network
    routed: IPv4Network | None = None  # an external site's network behind its router
    hosts: int = Field(1, ge=0, le=50)  # an external site's hosts, from .10 of its routed network
    vms: int = Field(10, ge=0, le=250)  # VMs take the first N addresses of the pool
    gateway: LabGateway
    # a second gateway on the same LAN (an HA pair, docs/ha.md): its own WAN link and public address
    standby: LabGateway | None = None
    # the pair's virtual LAN address, the VMs' default gateway (held by the active gateway);
    # without it the VMs route via the first gateway's own address
    virtual_address: IPv4 | None = None
    wan_mtu: int = Field(1500, ge=1280, le=9000)  # the gateway's WAN link (both ends): e.g. 1400 behind a tunnel
    lan_mtu: int = Field(1500, ge=1280, le=9000)  # the cloud's LAN: e.g. 1450 on an OpenStack VXLAN network


def host_address(site: LabSite, index: int) -> IPv4Interface:
    """Host #index (from 0) behind an external site's router: .10 on of its routed network."""
    assert site.routed is not None
    return IPv4Interface(f"{site.routed.network_address + 10 + index}/{site.routed.prefixlen}")


def hosts(scenario: Scenario) -> list[Vm]:
    """External sites' hosts, named <site>-host<N> (N from 1)."""
    return [
        Vm(f"{site.name}-host{i + 1}", site.name, host_address(site, i).ip, vm_mac(host_address(site, i).ip))
        for site in scenario.sites
        if site.kind == "external"
        for i in range(site.hosts)
    ]


def default_gateway(site: LabSite) -> IPv4Address:
    """Where the site's VMs send what leaves the subnet: the pair's virtual address, else its gateway."""
    return site.virtual_address or site.gateway.lan_address


def site_gateways(site: LabSite) -> list[LabGateway]:
    """The site's gateways: its gateway, then its standby if it has one."""
    return [site.gateway] + ([site.standby] if site.standby is not None else [])


def wan_link(index: int, member: int) -> tuple[IPv4Interface, IPv4Interface, str]:
    """(gateway's WAN address, the `wan` router's address, the router's interface) of site #index's
    gateway #member: 10.(100+index).<member>.2/24 behind .1."""
    return (
        IPv4Interface(f"10.{100 + index}.{member}.2/24"),
        IPv4Interface(f"10.{100 + index}.{member}.1/24"),
        f"site{index}" if member == 0 else f"site{index}s{member}",
    )


class LabNetwork(StrictModel):
    name: Name = "lab"
    cidr: IPv4Network
    mode: Literal["l3", "l2"] = "l3"  # l2: VXLAN inside the tunnel (gateways need lan_bridge: true)
    flood: bool = False  # l2: broadcast crosses sites


class LabAgent(StrictModel):
    interval: float = Field(2.0, gt=0)  # short in the lab, so repairs are quick to see
    probe_rate: float = Field(20.0, ge=0)
    # seconds before a VM that stopped answering leaves the mapping (the agent's default: 300)
    expire_after: float | None = Field(None, gt=0, le=86_400)


class Scenario(StrictModel):
    name: Name
    description: str = ""
    network: LabNetwork
    sites: list[LabSite] = Field(min_length=2)
    internet_address: IPv4 = IPv4Address("198.51.100.10")
    controller_address: IPv4 = IPv4Address("198.51.101.10")  # where the gateways reach the controller
    agent: LabAgent = LabAgent()

    @model_validator(mode="after")
    def _names_unique(self) -> Scenario:
        names = [site.name for site in self.sites]
        if len(set(names)) != len(names):
            raise ValueError("site names must be unique")
        return self


@dataclass(frozen=True)
class Vm:
    name: str
    site: str
    address: IPv4Address
    mac: str


def vm_name(site: str, address: IPv4Address, network: IPv4Network) -> str:
    return f"{site}-vm{int(address) - int(network.network_address)}"


def vm_mac(address: IPv4Address) -> str:
    """Deterministic, locally administered: 02:c6:<ip bytes>, easy to recognise in captures."""
    return "02:c6:" + ":".join(f"{b:02x}" for b in address.packed)


def vms(scenario: Scenario) -> list[Vm]:
    result = []
    for site in scenario.sites:
        if site.pool is None:
            continue
        for index, address in enumerate(site.pool.addresses()):
            if index >= site.vms:
                break
            result.append(Vm(vm_name(site.name, address, scenario.network.cidr), site.name, address, vm_mac(address)))
    return result


def wan_interface(index: int) -> IPv4Interface:
    """The gateway of site #index sits at 10.(100+index).0.2/24 behind the `wan` router's .1."""
    return IPv4Interface(f"10.{100 + index}.0.2/24")


def router_interface(index: int) -> IPv4Interface:
    return IPv4Interface(f"10.{100 + index}.0.1/24")


def internet_router() -> IPv4Interface:
    return IPv4Interface("198.51.100.1/24")


def controller_router(scenario: Scenario) -> IPv4Interface:
    """The `wan` router's side of the controller's link: .1 of the controller's /24."""
    network = IPv4Interface(f"{scenario.controller_address}/24").network
    return IPv4Interface(f"{network.network_address + 1}/24")


def check_scenario(scenario: Scenario) -> list[Problem]:
    problems: list[Problem] = []
    net = scenario.network.cidr
    if len(scenario.sites) > 150:
        problems.append(Problem("sites", "at most 150 sites fit the lab's WAN addressing"))
    for s, site in enumerate(scenario.sites):
        where = f"sites[{s}]"
        problems.extend(_kind_problems(site, where, net))
        if site.pool is not None and not site.pool.within(net):
            problems.append(Problem(f"{where}.pool", f"{site.pool} is outside {net}"))
        if site.pool is not None and site.vms > site.pool.size:
            problems.append(
                Problem(f"{where}.vms", f"{site.vms} VMs do not fit pool {site.pool}", "enlarge the pool or lower vms")
            )
        for role, gateway in (("gateway", site.gateway), ("standby", site.standby)):
            if gateway is None:
                continue
            inside = site.routed if site.kind == "external" else net
            if inside is not None and gateway.lan_address not in inside:
                problems.append(Problem(f"{where}.{role}.lan_address", f"{gateway.lan_address} is outside {inside}"))
            if gateway.public_address not in PUBLIC_NET:
                problems.append(
                    Problem(
                        f"{where}.{role}.public_address",
                        f"must be in {PUBLIC_NET}",
                        "the lab's public addresses are documentation addresses",
                    )
                )
        if site.virtual_address is not None and (
            site.virtual_address not in net
            or any(other.pool is not None and site.virtual_address in other.pool for other in scenario.sites)
            or any(site.virtual_address == g.lan_address for other in scenario.sites for g in site_gateways(other))
        ):
            problems.append(
                Problem(f"{where}.virtual_address", "must be in the network, outside every pool and gateway address")
            )
        if site.standby is not None and site.standby.lan_address == site.gateway.lan_address:
            problems.append(Problem(f"{where}.standby.lan_address", "is the gateway's too", "give each its own"))
        for t, other in enumerate(scenario.sites):
            if other.pool is None:
                continue
            if t > s and site.pool is not None and site.pool.overlaps(other.pool):
                problems.append(Problem(f"sites[{t}].pool", f"overlaps sites[{s}].pool"))
            for gateway in site_gateways(site):
                if gateway.lan_address in other.pool:
                    problems.append(Problem(f"{where}.gateway.lan_address", f"is in site '{other.name}''s pool"))
    names = [g.name for site in scenario.sites for g in site_gateways(site)]
    if len(set(names)) != len(names):
        problems.append(Problem("sites", "gateway names must be unique"))
    publics = [g.public_address for site in scenario.sites for g in site_gateways(site)]
    if len(set(publics)) != len(publics):
        problems.append(Problem("sites", "gateway public addresses must be unique"))
    return problems


def _kind_problems(site: LabSite, where: str, net: IPv4Network) -> list[Problem]:
    if site.kind == "cloudgw":
        if site.pool is None:
            return [Problem(f"{where}.pool", "a cloudgw site needs a pool", "give its VMs' range")]
        if site.routed is not None:
            return [Problem(f"{where}.routed", "only an external site has a routed network", "set kind: external")]
        return []
    problems = []
    if site.routed is None:
        problems.append(Problem(f"{where}.routed", "an external site needs its routed network", "e.g. 10.50.0.0/16"))
    elif site.routed.overlaps(net):
        problems.append(Problem(f"{where}.routed", f"{site.routed} overlaps the stretched {net}"))
    if site.pool is not None or site.standby is not None or site.virtual_address is not None:
        problems.append(Problem(where, "an external site has a router and hosts: no pool, standby or virtual address"))
    return problems


def load_scenario(text: str, source: str = "scenario") -> Scenario:
    data = parse_yaml(text, source)
    if not isinstance(data, dict):
        raise InvalidInput([Problem("", "expected a mapping")], what=source)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(pydantic_problems(exc), what=source) from None
    problems = check_scenario(scenario)
    if problems:
        raise InvalidInput(problems, what=source)
    return scenario


def builtin_scenarios() -> list[str]:
    folder = resources.files("cloudgw.lab") / "scenarios"
    return sorted(
        p.name.removesuffix(".yaml")
        for p in folder.iterdir()
        if p.name.endswith(".yaml") and not p.name.endswith(".topology.yaml")
    )


def builtin_topology(name: str) -> str | None:
    """The topology file shipped with a built-in scenario (`<name>.topology.yaml`), if any."""
    candidate = resources.files("cloudgw.lab") / "scenarios" / f"{name}.topology.yaml"
    return candidate.read_text() if candidate.is_file() else None


def find_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name ("seed"), or a YAML file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        try:
            return load_scenario(path.read_text(), str(path))
        except FileNotFoundError:
            raise InvalidInput([Problem("--scenario", f"no file {path}")], what="scenario") from None
    folder = resources.files("cloudgw.lab") / "scenarios"
    candidate = folder / f"{name_or_path}.yaml"
    if not candidate.is_file():
        raise InvalidInput(
            [
                Problem(
                    "--scenario",
                    f"no built-in scenario '{name_or_path}'",
                    f"use one of: {', '.join(builtin_scenarios())}, or a path to a YAML file",
                )
            ],
            what="scenario",
        )
    return load_scenario(candidate.read_text(), f"scenario {name_or_path}")
