"""Diff observed against desired kernel state into an ordered plan (pure).

The order is fixed and safe: links, WireGuard device, VXLAN devices (the L2 backend), filters (nft),
peers, sysctls, LAN addresses (an HA pair's virtual address), neighbours, forwarding entries and
bridge ARP entries (L2), routes, policy rules; deletes come first, in reverse.
Filters go in before the peers and routes that open a path, so there is no moment when a new path
is open and unfiltered (DESIGN.md puts nft last;
this is the one deviation, for that reason). Routes go in late: a route into the tunnel before its
peer exists would send packets nowhere; policy rules last, once their table has its route.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from cloudgw.dataplane.kernelstate import MAIN_TABLE, KernelState

Op = Literal["add", "change", "delete"]
Kind = Literal[
    "link", "device", "vxlan", "nft", "peer", "sysctl", "address", "neighbour", "fdb", "arp", "route", "rule"
]
ORDER: tuple[Kind, ...] = (
    "link",
    "device",
    "vxlan",
    "nft",
    "peer",
    "sysctl",
    "address",
    "neighbour",
    "fdb",
    "arp",
    "route",
    "rule",
)


@dataclass(frozen=True)
class Action:
    op: Op
    kind: Kind
    key: str  # what it is about, for logs and dry runs
    desired: object = None
    observed: object = None

    def __str__(self) -> str:
        return f"{self.op} {self.kind} {self.key}"


def _diff_map(kind: Kind, observed: Mapping[Any, Any], desired: Mapping[Any, Any]) -> list[Action]:
    actions: list[Action] = []
    for key in sorted(observed.keys() - desired.keys(), key=str):
        actions.append(Action("delete", kind, _label(key), None, observed[key]))
    for key in sorted(desired.keys(), key=str):
        if key not in observed:
            actions.append(Action("add", kind, _label(key), desired[key], None))
        elif observed[key] != desired[key]:
            actions.append(Action("change", kind, _label(key), desired[key], observed[key]))
    return actions


def _label(key: object) -> str:
    if isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], int):  # a route: (table, dst)
        return f"{key[1]}" if key[0] == MAIN_TABLE else f"{key[1]} table {key[0]}"
    if isinstance(key, tuple):
        return " ".join(str(part) for part in key)
    return str(key)


def _comparable_peers(observed: KernelState, desired: KernelState) -> dict[Any, Any]:
    """A peer configured without an endpoint learns one from the packets it receives (roaming);
    that is not a difference to undo."""
    result = dict(observed.peers)
    for key, peer in observed.peers.items():
        wanted = desired.peers.get(key)
        if wanted is not None and wanted.endpoint is None and peer.endpoint is not None:
            result[key] = replace(peer, endpoint=None)
    return result


def plan(observed: KernelState, desired: KernelState) -> list[Action]:
    # a VXLAN device that changes is rebuilt, and its forwarding entries go with the old one
    rebuilt = {name for name in observed.vxlans if observed.vxlans[name] != desired.vxlans.get(name)}
    by_kind: dict[Kind, list[Action]] = {
        "link": _diff_map("link", observed.links, desired.links),
        "device": _diff_map("device", observed.devices, desired.devices),
        "peer": _diff_map("peer", _comparable_peers(observed, desired), desired.peers),
        "sysctl": [a for a in _diff_map("sysctl", observed.sysctls, desired.sysctls) if a.op != "delete"],
        "address": _diff_map("address", {a: a for a in observed.addresses}, {a: a for a in desired.addresses}),
        "neighbour": _diff_map("neighbour", {n: n for n in observed.neighbours}, {n: n for n in desired.neighbours}),
        "rule": _diff_map("rule", {r: r for r in observed.rules}, {r: r for r in desired.rules}),
        "route": _diff_map("route", observed.routes, desired.routes),
        "vxlan": _diff_map("vxlan", observed.vxlans, desired.vxlans),
        "fdb": _diff_map("fdb", {e: e for e in observed.fdb if e.dev not in rebuilt}, {e: e for e in desired.fdb}),
        "arp": _diff_map("arp", {a: a for a in observed.arp}, {a: a for a in desired.arp}),
        "nft": [],
    }
    if desired.nft is not None and observed.nft != desired.nft:
        op: Op = "add" if observed.nft is None else "change"
        by_kind["nft"] = [Action(op, "nft", "table inet cloudgw", desired.nft, observed.nft)]
    elif desired.nft is None and observed.nft is not None:
        by_kind["nft"] = [Action("delete", "nft", "table inet cloudgw", None, observed.nft)]

    deletes = [a for kind in reversed(ORDER) for a in by_kind[kind] if a.op == "delete"]
    upserts = [a for kind in ORDER for a in by_kind[kind] if a.op != "delete"]
    return deletes + upserts


def summary(actions: list[Action]) -> dict[str, int]:
    counts = {"adds": 0, "changes": 0, "dels": 0}
    for action in actions:
        counts[{"add": "adds", "change": "changes", "delete": "dels"}[action.op]] += 1
    return counts
