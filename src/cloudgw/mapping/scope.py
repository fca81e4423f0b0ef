"""Which gateways a write may have touched, derived from the topology before and after it (pure).

Design notes
- No write names the gateways it affects: it only says what it changed (`Change.record`, for the
  audit). The candidates are derived here from what actually differs between the two topologies,
  so a cascade (a site deleted with its pools and connections) or a rename is covered without the
  writer thinking of it, and a new kind of write cannot forget anyone.
- Per changed object, the rule is evaluated on both topologies (before and after: a moved pool
  touches its old and its new site's neighbours). The rules say whose document can contain the
  object: a superset. State.write then keeps, when the set is small, only the gateways whose
  rendered document really differs (exact, and the new documents are cached for the watch feed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from cloudgw.model.topology import Topology

COLLECTIONS = ("sites", "networks", "pools", "gateways", "connections", "egress", "forwards", "inventory", "bursts")


class Neighbours(Protocol):
    """Who is connected to whom: the topology answers by scanning it, its index (TopologyIndex) from
    per-site lists (a join at 1,000 sites scanned every connection and gateway twice)."""

    def connected_sites(self, site: str, network: str | None = None) -> set[str]: ...

    def gateways_for_sites(self, sites: Iterable[str]) -> set[str]: ...


def _neighbours(
    topo: Topology, sites: Iterable[str], network: str | None = None, near: Neighbours | None = None
) -> set[str]:
    """Gateways of these sites and of every site connected to them (in that network)."""
    near = near or topo
    wanted = {s for s in sites if s in topo.sites}
    for site in list(wanted):
        wanted |= near.connected_sites(site, network)
    return near.gateways_for_sites(wanted)


def _network_sites(topo: Topology, network: str) -> set[str]:
    sites = {p.site for p in topo.pools.values() if p.network == network}
    sites |= {s for c in topo.connections.values() if c.network == network for s in (c.site_a, c.site_b)}
    return sites


def _rule(topo: Topology, collection: str, obj: Any, near: Neighbours | None = None) -> set[str]:
    """Gateways whose document may hold this object, in this topology."""
    if collection == "sites":
        return _neighbours(topo, {obj.name}, near=near)
    if collection == "networks":
        return topo.gateways_for_sites(_network_sites(topo, obj.name))
    if collection == "pools":
        return _neighbours(topo, {obj.site}, obj.network, near)
    if collection == "gateways":
        around = _neighbours(topo, {obj.site}, near=near)
        return {obj.name} | around if obj.name in topo.gateways else around
    if collection == "connections":
        return _neighbours(topo, {obj.site_a, obj.site_b}, obj.network, near)
    if collection == "egress":
        return _neighbours(topo, {obj.site, *([obj.via] if obj.via else [])}, obj.network, near)
    if collection == "forwards":
        return {obj.gateway} & set(topo.gateways)
    if collection == "inventory":  # only the gateway that announces it holds it
        return {obj.gateway} & set(topo.gateways)
    if collection == "bursts":  # a policy is the controller's alone; its VMs reach documents as inventory
        return set()
    raise ValueError(f"no scope rule for {collection}")


def changed_objects(before: Topology, after: Topology) -> list[tuple[str, Any, Any]]:
    """(collection, object before or None, object after or None) for everything that differs."""
    changes = []
    for collection in COLLECTIONS:
        old, new = getattr(before, collection), getattr(after, collection)
        if old is new:
            continue
        for name in old.keys() | new.keys():
            a, b = old.get(name), new.get(name)
            if a is not b and a != b:  # a working copy shares the objects it did not change
                changes.append((collection, a, b))
    return changes


def candidates(
    before: Topology,
    after: Topology,
    announced: Iterable[tuple[str, str]] = (),
    touched: Iterable[tuple[str, str]] | None = None,
    near: tuple[Neighbours, Neighbours] | None = None,
) -> set[str]:
    """Every gateway whose document may differ after the write (a superset; never misses one).
    `announced`: the (network, gateway) groups whose announcements the write replaced. `touched`:
    the (collection, name) of every object the write changed, when the caller knows them all (a
    write that only creates): only those are compared, not the whole topology. `near`: the
    indexes of the two topologies (before, after), which answer neighbour questions faster."""
    sides = tuple(zip((before, after), near or (before, after), strict=True))
    result: set[str] = set()
    if touched is None:
        changed = changed_objects(before, after)
    else:
        changed = [
            (collection, getattr(before, collection).get(name), getattr(after, collection).get(name))
            for collection, name in touched
        ]
    for collection, old, new in changed:
        for (topo, lookup), obj in zip(sides, (old, new), strict=True):
            if obj is not None:
                result |= _rule(topo, collection, obj, lookup)
    for network, gateway in announced:
        for topo, lookup in sides:
            if gateway in topo.gateways:
                site = topo.gateways[gateway].site
                result |= lookup.gateways_for_sites(lookup.connected_sites(site, network))
                net = topo.networks.get(network)
                if net is not None and net.mode == "l2":
                    # a VM that moved here was listed as remote in this site's own documents
                    result |= topo.gateways_for_sites({site})
    return {name for name in result if name in after.gateways}
