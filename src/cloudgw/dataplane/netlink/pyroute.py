"""pyroute2 behind the project's own interface (see the package docstring).

It turns pyroute2's NetlinkError into DataplaneError naming the operation, and a delete that finds
nothing counts as success. `Netlink(netns=None)` works on the caller's own namespace (how the agent
runs); `Netlink(netns="name")` on a named one (how the lab builds its topology from the root
namespace). A named namespace must exist: pyroute2 would otherwise silently create it on a typo.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from types import TracebackType
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from cloudgw.dataplane.kernelstate import RT_PROTO, LanAddress, PolicyRule, Route
from cloudgw.errors import DataplaneError

_GONE = {errno.ENOENT, errno.ESRCH, errno.EADDRNOTAVAIL, errno.ENODEV}

NUD_STATES = {
    0x01: "incomplete",
    0x02: "reachable",
    0x04: "stale",
    0x08: "delay",
    0x10: "probe",
    0x20: "failed",
    0x40: "noarp",
    0x80: "permanent",
}


@dataclass(frozen=True)
class LinkInfo:
    name: str
    index: int
    kind: str  # "veth", "bridge", "vxlan", "" for tun/physical
    mtu: int
    up: bool
    mac: str


@dataclass(frozen=True)
class Neighbour:
    ip: IPv4Address
    mac: str
    dev: str
    state: str


def _attr(msg: Any, name: str, default: Any = None) -> Any:
    value = msg.get_attr(name)
    return default if value is None else value


class Netlink:
    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        try:
            self._ipr = IPRoute(netns=netns, flags=0) if netns else IPRoute()
        except FileNotFoundError:
            raise DataplaneError(f"network namespace '{netns}' does not exist") from None
        self._names: dict[int, str] = {}

    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _call(self, what: str, fn: Any, *args: Any, missing_ok: bool = False, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NetlinkError as exc:
            if missing_ok and exc.code in _GONE:
                return None
            where = f" in netns {self.netns}" if self.netns else ""
            raise DataplaneError(f"{what}{where}: {os.strerror(exc.code)} (errno {exc.code})") from None

    # links -------------------------------------------------------------------------------------
    def links(self) -> list[LinkInfo]:
        result = []
        for msg in self._call("dump links", self._ipr.get_links):
            info = msg.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else ""
            name = msg.get_attr("IFLA_IFNAME")
            self._names[msg["index"]] = name
            result.append(
                LinkInfo(
                    name=name,
                    index=msg["index"],
                    kind=kind or "",
                    mtu=_attr(msg, "IFLA_MTU", 0),
                    up=bool(msg["flags"] & 1),
                    mac=_attr(msg, "IFLA_ADDRESS", ""),
                )
            )
        return result

    def ports(self, bridge: str) -> list[str]:
        """The names of a bridge's ports."""
        found = self._ipr.link_lookup(ifname=bridge)
        if not found:
            return []
        return sorted(
            str(msg.get_attr("IFLA_IFNAME"))
            for msg in self._call("dump links", self._ipr.get_links)
            if msg.get_attr("IFLA_MASTER") == found[0]
        )

    def link(self, name: str) -> LinkInfo | None:
        for info in self.links():
            if info.name == name:
                return info
        return None

    def index(self, name: str) -> int:
        found = self._ipr.link_lookup(ifname=name)
        if not found:
            where = f" in netns {self.netns}" if self.netns else ""
            raise DataplaneError(f"no interface '{name}'{where}")
        return int(found[0])

    def name_of(self, index: int) -> str:
        if index not in self._names:
            self.links()
        return self._names.get(index, str(index))

    def set_link(
        self,
        name: str,
        *,
        up: bool | None = None,
        mtu: int | None = None,
        master: str | None = None,
        netns: str | None = None,
        mac: str | None = None,
    ) -> None:
        args: dict[str, Any] = {}
        if up is not None:
            args["state"] = "up" if up else "down"
        if mtu is not None:
            args["mtu"] = mtu
        if master is not None:
            args["master"] = self.index(master)
        if netns is not None:
            args["net_ns_fd"] = netns
        if mac is not None:
            args["address"] = mac
        self._call(f"set link {name}", self._ipr.link, "set", index=self.index(name), **args)

    def add_veth(self, name: str, peer: str, peer_netns: str | None = None) -> None:
        peer_spec: dict[str, Any] = {"ifname": peer}
        if peer_netns is not None:
            peer_spec["net_ns_fd"] = peer_netns
        self._call(f"add veth {name}", self._ipr.link, "add", ifname=name, kind="veth", peer=peer_spec)

    def add_bridge(self, name: str) -> None:
        self._call(f"add bridge {name}", self._ipr.link, "add", ifname=name, kind="bridge")

    def delete_link(self, name: str) -> None:
        found = self._ipr.link_lookup(ifname=name)
        if found:
            self._call(f"delete link {name}", self._ipr.link, "del", index=found[0], missing_ok=True)

    # addresses ---------------------------------------------------------------------------------
    def addresses(self, name: str | None = None) -> list[tuple[str, IPv4Interface]]:
        kwargs = {"index": self.index(name)} if name else {}
        result = []
        for msg in self._call("dump addresses", self._ipr.get_addr, family=socket.AF_INET, **kwargs):
            result.append(
                (self.name_of(msg["index"]), IPv4Interface(f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}"))
            )
        return result

    def add_address(self, name: str, address: IPv4Interface) -> None:
        if (name, address) in self.addresses(name):
            return
        self._call(
            f"add address {address} on {name}",
            self._ipr.addr,
            "add",
            index=self.index(name),
            address=str(address.ip),
            prefixlen=address.network.prefixlen,
        )

    def owned_addresses(self, proto: int = RT_PROTO) -> set[LanAddress]:
        """Addresses cloudgw added (marked with its protocol number)."""
        result = set()
        for msg in self._call("dump addresses", self._ipr.get_addr, family=socket.AF_INET):
            if msg.get_attr("IFA_PROTO") == proto:
                address = IPv4Interface(f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}")
                result.add(LanAddress(address, self.name_of(msg["index"])))
        return result

    def add_owned_address(self, lan: LanAddress, proto: int = RT_PROTO) -> None:
        self._call(
            f"add address {lan.address} on {lan.dev}",
            self._ipr.addr,
            "replace",
            index=self.index(lan.dev),
            address=str(lan.address.ip),
            prefixlen=lan.address.network.prefixlen,
            proto=proto,
        )

    def delete_address(self, lan: LanAddress) -> None:
        self._call(
            f"delete address {lan.address} on {lan.dev}",
            self._ipr.addr,
            "del",
            index=self.index(lan.dev),
            address=str(lan.address.ip),
            prefixlen=lan.address.network.prefixlen,
            missing_ok=True,
        )

    # routes ------------------------------------------------------------------------------------
    def replace_route(self, route: Route, proto: int = RT_PROTO, gateway: str | None = None) -> None:
        args: dict[str, Any] = {"dst": str(route.dst), "proto": proto, "table": route.table}
        if route.dev:
            args["oif"] = self.index(route.dev)
        if route.src is not None:
            args["prefsrc"] = str(route.src)
        if gateway is not None:
            args["gateway"] = gateway
        self._call(f"replace route {route.dst}", self._ipr.route, "replace", **args)

    # policy rules ------------------------------------------------------------------------------
    def rules(self, proto: int = RT_PROTO) -> set[PolicyRule]:
        result = set()
        for msg in self._call("dump rules", self._ipr.get_rules, family=socket.AF_INET):
            if msg.get_attr("FRA_PROTOCOL") != proto:
                continue
            src = msg.get_attr("FRA_SRC")
            suppress = msg.get_attr("FRA_SUPPRESS_PREFIXLEN")
            result.add(
                PolicyRule(
                    int(msg.get_attr("FRA_PRIORITY") or 0),
                    int(msg.get_attr("FRA_TABLE") or msg["table"]),
                    IPv4Network(f"{src}/{msg['src_len']}") if src else None,
                    None if suppress in (None, 0xFFFFFFFF) else int(suppress),
                )
            )
        return result

    def _rule_args(self, rule: PolicyRule, proto: int) -> dict[str, Any]:
        args: dict[str, Any] = {
            "priority": rule.priority,
            "table": rule.table,
            "protocol": proto,
            "family": socket.AF_INET,
        }
        if rule.src is not None:
            args["src"] = str(rule.src.network_address)
            args["src_len"] = rule.src.prefixlen
        if rule.suppress_prefixlength is not None:
            args["FRA_SUPPRESS_PREFIXLEN"] = rule.suppress_prefixlength  # `suppress_prefixlength=0` is dropped
        return args

    def add_rule(self, rule: PolicyRule, proto: int = RT_PROTO) -> None:
        self._call(f"add rule {rule}", self._ipr.rule, "add", **self._rule_args(rule, proto))

    def delete_rule(self, rule: PolicyRule, proto: int = RT_PROTO) -> None:
        self._call(f"delete rule {rule}", self._ipr.rule, "del", **self._rule_args(rule, proto), missing_ok=True)

    # neighbours --------------------------------------------------------------------------------
    def bridge_port_forwarding(self, port: str) -> bool:
        """Is this bridge port forwarding yet? (Its carrier reaches the bridge asynchronously.)"""
        msgs = self._call(f"show bridge port {port}", self._ipr.brport, "show", index=self.index(port))
        for msg in msgs:
            info = msg.get_attr("IFLA_PROTINFO")
            if info is not None:
                return bool(info.get_attr("IFLA_BRPORT_STATE") == 3)  # BR_STATE_FORWARDING
        return False

    def neighbours(self, dev: str | None = None) -> list[Neighbour]:
        kwargs = {"ifindex": self.index(dev)} if dev else {}
        result = []
        for msg in self._call("dump neighbours", self._ipr.get_neighbours, family=socket.AF_INET, **kwargs):
            mac = msg.get_attr("NDA_LLADDR")
            if not mac:
                continue
            result.append(
                Neighbour(
                    IPv4Address(msg.get_attr("NDA_DST")),
                    mac,
                    self.name_of(msg["ifindex"]),
                    NUD_STATES.get(msg["state"], str(msg["state"])),
                )
            )
        return result


def read_sysctl(key: str) -> str | None:
    """Current namespace only: /proc/sys/net is per network namespace."""
    try:
        with open(f"/proc/sys/{key}") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return None


def write_sysctl(key: str, value: str) -> None:
    try:
        with open(f"/proc/sys/{key}", "w") as handle:
            handle.write(value)
    except OSError as exc:
        raise DataplaneError(f"set sysctl {key}={value}: {exc.strerror}") from None


async def watch_neighbours(on_neighbour: Any, netns: str | None = None) -> None:
    """Call on_neighbour(Neighbour-like tuple) for every IPv4 neighbour the kernel learns or refreshes.

    Runs until cancelled. Uses the asyncio API: a blocking IPRoute.get() cannot be interrupted."""
    from pyroute2 import AsyncIPRoute
    from pyroute2.netlink.rtnl import RTM_NEWNEIGH, RTMGRP_NEIGH

    kwargs: dict[str, Any] = {"netns": netns, "flags": 0} if netns else {}
    async with AsyncIPRoute(**kwargs) as events:
        await events.bind(groups=RTMGRP_NEIGH)
        while True:
            async for msg in events.get():
                if msg["header"]["type"] != RTM_NEWNEIGH or msg["family"] != socket.AF_INET:
                    continue
                mac = msg.get_attr("NDA_LLADDR")
                dst = msg.get_attr("NDA_DST")
                if not mac or not dst or msg["state"] & 0x20:  # no lladdr, or NUD_FAILED
                    continue
                on_neighbour(IPv4Address(dst), mac, msg["ifindex"])
