"""An in-memory data plane: the same contract as the kernel, for fast tests and simulations of many
gateways in one process."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from cloudgw.dataplane.base import Observation
from cloudgw.dataplane.kernelstate import KernelState
from cloudgw.dataplane.plan import Action
from cloudgw.errors import DataplaneError


class FakeDataplane:
    def __init__(self, interfaces: Iterable[str] = ("lan0", "wan0"), sysctls: dict[str, str] | None = None) -> None:
        self.state = KernelState()
        self.interfaces = {name: "02:00:00:00:00:00" for name in interfaces}
        self.base_sysctls = dict(sysctls or {})
        self.applied: list[Action] = []  # every action ever applied, for assertions
        self.fail_on: str | None = None  # an action kind to fail, to test error paths

    def observe(self, sysctl_keys: Iterable[str] = ()) -> Observation:
        sysctls = {**{key: "0" for key in sysctl_keys}, **self.base_sysctls, **self.state.sysctls}
        state = replace(self.state, sysctls={key: sysctls[key] for key in sysctl_keys})
        interfaces = dict(self.interfaces)
        interfaces.update({name: "02:00:00:00:00:01" for name in self.state.links})
        return Observation(state=state, interfaces=interfaces)

    def apply(self, actions: list[Action]) -> None:
        links, devices = dict(self.state.links), dict(self.state.devices)
        peers, sysctls, routes = dict(self.state.peers), dict(self.state.sysctls), dict(self.state.routes)
        neighbours, rules, nft = set(self.state.neighbours), set(self.state.rules), self.state.nft
        addresses = set(self.state.addresses)
        tables = {"link": links, "device": devices, "peer": peers, "sysctl": sysctls, "route": routes}
        for action in actions:
            if action.kind == self.fail_on:
                raise DataplaneError(f"fake failure on {action}")
            value = action.desired if action.op != "delete" else action.observed
            if action.kind == "nft":
                nft = action.desired if action.op != "delete" else None  # type: ignore[assignment]
            elif action.kind in ("neighbour", "rule", "address"):
                members: set[object] = {"neighbour": neighbours, "rule": rules, "address": addresses}[  # type: ignore[assignment]
                    action.kind
                ]
                (members.discard if action.op == "delete" else members.add)(value)
            else:
                table = tables[action.kind]
                key = _key(action.kind, value, action.key)
                if action.op == "delete":
                    table.pop(key, None)
                else:
                    table[key] = value
            self.applied.append(action)
        self.state = KernelState(
            links=links,
            devices=devices,
            peers=peers,
            sysctls=sysctls,
            neighbours=frozenset(neighbours),
            addresses=frozenset(addresses),
            routes=routes,
            rules=frozenset(rules),  # type: ignore[arg-type]
            nft=nft,
        )


def _key(kind: str, value: object, label: str) -> object:
    if kind == "peer":
        return (value.link, value.public_key)  # type: ignore[attr-defined]
    if kind == "route":
        return value.key  # type: ignore[attr-defined]
    if kind in ("link", "device"):
        return getattr(value, "name", None) or value.link  # type: ignore[attr-defined]
    return label
