"""What every data plane offers the agent: observe what is there, apply a plan."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from cloudgw.dataplane.kernelstate import KernelState
from cloudgw.dataplane.plan import Action
from cloudgw.dataplane.wireguard import PeerStats


@dataclass
class Observation:
    state: KernelState  # cloudgw-owned objects only
    interfaces: dict[str, str] = field(default_factory=dict)  # every link present: name -> MAC
    addresses: dict[str, list[str]] = field(default_factory=dict)  # name -> ["192.168.1.254/24", ...]
    peer_stats: list[PeerStats] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)  # nft named counters (packets)


class Dataplane(Protocol):
    def observe(self, sysctl_keys: Iterable[str] = ()) -> Observation: ...

    def apply(self, actions: list[Action]) -> None: ...
