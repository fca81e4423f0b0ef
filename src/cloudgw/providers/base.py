"""The provider interface: observe a site's cloud side, plan the steps that make it fit the mapping,
apply them one by one. Plans are pure (observed state in, steps out), so they are tested without a
cloud; only observe and apply talk to one.

    need = need_for(topology, site)          # what the mapping asks of the cloud (providers.need)
    seen = provider.observe(need, ledger)    # the cloud as it is, and what cloudgw owns there
    findings = provider.checks(need, seen)   # preflight: every trap, with the fix
    for step in provider.plan(need, seen):   # empty when the cloud already fits
        provider.apply(step)

Everything cloudgw creates in a cloud is marked (a `cloudgw:site` tag on AWS, a `cloudgw` description
on OpenStack) and recorded in the controller's ledger (what it added and what it changed from), so
that deleting a site removes exactly what cloudgw created there and restores what it changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Any, Literal, Protocol

from cloudgw.errors import CloudgwError
from cloudgw.model.addr import AddressRange

if TYPE_CHECKING:
    from cloudgw.model.topology import Topology

Severity = Literal["error", "warning", "change", "ok"]
"""error: refuses apply until fixed; warning: works, but worse; change: cloudgw will do it; ok: checked."""


@dataclass(frozen=True)
class Need:
    """What the effective mapping asks of one site's cloud (providers.need.need_for, pure)."""

    site: str
    provider: str
    gateway: str | None  # the cloudgw gateway behind the cloud identity
    active: str | None = None  # of an HA pair: the gateway that holds the active role now
    networks: tuple[tuple[str, IPv4Network], ...] = ()  # (name, cidr) the site serves
    own_ranges: tuple[AddressRange, ...] = ()  # this site's pools
    remote_ranges: tuple[AddressRange, ...] = ()  # connected sites' pools: this site's gateway answers for them
    remote_addresses: frozenset[IPv4Address] = frozenset()  # connected sites' effective endpoints
    peers: frozenset[IPv4Address] = frozenset()  # public addresses of the peer gateways
    listen_port: int = 51820
    tunnel_mtu: int = 1420  # the largest connection MTU of the site
    deleting: bool = False  # the site is gone: remove what cloudgw created, restore what it changed

    @classmethod
    def removal(cls, site: str, provider: str) -> Need:
        return cls(site=site, provider=provider, gateway=None, deleting=True)


@dataclass(frozen=True)
class Finding:
    """One preflight result: what was checked, what is wrong (or will be changed), and the fix."""

    site: str
    check: str  # a short key: reserved, eni-limit, source-dest-check, tunnel-port, port-security, mtu, ...
    severity: Severity
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "site": self.site,
            "check": self.check,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class Step:
    """One change in a cloud: a kind the provider knows, its target, and the values it sets."""

    kind: str
    target: str
    values: tuple[str, ...] = ()
    text: str = ""  # for people: "assign 192.168.1.5 to eni-0abc as secondary IPs"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "values": list(self.values), "text": self.text}


@dataclass
class Observed:
    """A cloud as one observation saw it. `facts` are provider-specific (for plan and checks);
    `owned` is the ledger: what cloudgw created or changed there, carried between passes."""

    subnet: IPv4Network | None = None
    reserved: dict[IPv4Address, str] = field(default_factory=dict)
    inventory: dict[IPv4Address, str | None] = field(default_factory=dict)  # VMs the cloud lists: ip -> mac
    facts: dict[str, Any] = field(default_factory=dict)
    owned: dict[str, Any] = field(default_factory=dict)


class ProviderError(CloudgwError):
    """A cloud call failed. `transient`: throttling, a timeout, a 5xx: the pass is retried with
    backoff. Otherwise (denied, not found) it is shown until the admin fixes it."""

    def __init__(self, message: str, transient: bool = False, code: str = "", fix: str = "") -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code
        self.fix = fix


@dataclass(frozen=True)
class VmSpec:
    """A burst VM to start: its private address is chosen by the controller (from the site's pool,
    already in the mapping); tags let a restarted controller find it again."""

    policy: str
    ip: IPv4Address
    image: str
    size: str
    user_data: str = ""
    key_name: str | None = None

    @property
    def tags(self) -> dict[str, str]:
        return {"cloudgw:burst": self.policy, "cloudgw:ip": str(self.ip)}


class Provider(Protocol):
    name: str

    def launch_vm(self, vm: VmSpec) -> str:
        """Start a burst VM with this private address; returns the cloud's ID of it."""
        ...

    def terminate_vm(self, instance: str) -> None:
        """Stop and delete a burst VM; one already gone counts as done."""
        ...

    def list_vms(self, policy: str) -> dict[IPv4Address, str]:
        """The burst VMs of this policy the cloud has (by their tags): address -> ID."""
        ...

    def observe(self, need: Need, owned: dict[str, Any]) -> Observed: ...

    def checks(self, need: Need, seen: Observed, topo: Topology | None = None) -> list[Finding]: ...

    def plan(self, need: Need, seen: Observed) -> list[Step]: ...

    def apply(self, step: Step, seen: Observed) -> None:
        """Make one change and record it in seen.owned (the ledger the controller keeps)."""
        ...

    def launch(
        self, gateway: str, lan_ip: IPv4Address | None, image: str, size: str, user_data: str, key_name: str | None
    ) -> dict[str, str]:
        """Start a machine with this user-data in the site's subnet: {"instance": ..., "interface": ...}."""
        ...
