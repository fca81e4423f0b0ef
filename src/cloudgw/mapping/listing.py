"""The endpoint list, a page at a time, in address order (pure, with a cache).

Design notes. At 100,000 endpoints, sorting and filtering everything per request costs seconds and
a 15 MB answer. Every announcement already lives in one group per (network, gateway) in the
topology index, and a group object is shared by successive snapshots until that gateway announces
again (`TopologyIndex.with_announcements`). So each group is sorted once, when it changes, and
kept here beside the text a search looks at (a configuration change rebuilds the index with the
same announcement objects in new groups: an identity check keeps their runs); a page is then a
k-way merge of the groups' sorted runs, each entered by bisection at the cursor and the address
prefix: a first page costs
O(groups + page x log groups), not O(endpoints). Filters on a group's identity (network, gateway,
site) pick groups; a prefix narrows each run by bisection; a search or a state filter scans the
runs it keeps (a list comprehension over precomputed strings: milliseconds at 100,000) and gives
an exact total on every page.

Order: (network, address, gateway), the order of `cloudgw endpoint list` since v0.1.
"""

from __future__ import annotations

import bisect
import heapq
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Network
from itertools import islice
from typing import Literal

from cloudgw.mapping.index import TopologyIndex
from cloudgw.model.paging import Key, Page
from cloudgw.model.topology import Announcement, Group

EndpointState = Literal["effective", "ignored"]


@dataclass(frozen=True)
class EndpointQuery:
    network: str | None = None
    site: str | None = None
    gateway: str | None = None
    prefix: IPv4Network | None = None
    state: EndpointState | None = None
    text: str | None = None  # a substring of the address or the MAC, any case


@dataclass(frozen=True)
class _Run:
    """One group, sorted by address."""

    group: Group  # the object it was made from: a new object means the gateway announced again
    ips: list[int]
    announcements: list[Announcement]
    texts: list[str]  # "address mac", lower case, for searches


def _run(group: Group) -> _Run:
    ordered = sorted(group.items(), key=lambda item: int(item[0]))
    return _Run(
        group,
        [int(ip) for ip, _ in ordered],
        [a for _, a in ordered],
        [f"{ip} {a.mac or ''}".lower() for ip, a in ordered],
    )


class EndpointListing:
    """Sorted runs of the groups of the newest index asked about. Thread-safe: the API serves
    pages from several threads."""

    def __init__(self) -> None:
        self._runs: dict[tuple[str, str], _Run] = {}
        self._lock = threading.Lock()
        self._conflicts: tuple[TopologyIndex, list[tuple[str, int, list[str]]]] | None = None

    def _refresh(self, index: TopologyIndex) -> dict[tuple[str, str], _Run]:
        with self._lock:
            runs = self._runs
            for key, group in index.announced.items():
                known = runs.get(key)
                if known is None:
                    runs[key] = _run(group)
                elif known.group is not group:
                    # a rebuilt index (after a configuration change) holds the same announcement
                    # objects in new groups: checking identities costs far less than sorting again
                    same = len(group) == len(known.announcements) and all(
                        group.get(a.ip) is a for a in known.announcements
                    )
                    runs[key] = replace(known, group=group) if same else _run(group)
            if len(runs) > len(index.announced):
                for key in [k for k in runs if k not in index.announced]:
                    del runs[key]
            return dict(runs)

    def page(
        self, index: TopologyIndex, query: EndpointQuery, after: Key | None, limit: int | None
    ) -> Page[Announcement]:
        runs = self._refresh(index)
        chosen = sorted(
            (network, gateway)
            for network, gateway in runs
            if (query.network is None or network == query.network)
            and (query.gateway is None or gateway == query.gateway)
            and (query.site is None or index.site_of.get(gateway) == query.site)
        )
        low, high = (
            (int(query.prefix.network_address), int(query.prefix.broadcast_address)) if query.prefix else (0, 2**32 - 1)
        )
        text = query.text.lower() if query.text else None
        total = 0
        by_network: dict[str, list[tuple[str, _Run, Sequence[int]]]] = {}
        for network, gateway in chosen:
            run = runs[(network, gateway)]
            first, last = bisect.bisect_left(run.ips, low), bisect.bisect_right(run.ips, high)
            positions: Sequence[int] = range(first, last)
            if text is not None:
                positions = [p for p in positions if text in run.texts[p]]
            if query.state is not None:
                want = query.state == "effective"
                keys = index.effective_keys
                positions = [p for p in positions if ((network, run.ips[p], gateway) in keys) == want]
            total += len(positions)
            if positions:
                by_network.setdefault(network, []).append((gateway, run, positions))
        items: list[Announcement] = []
        wanted = None if limit is None else limit + 1
        for network in sorted(by_network):
            if after is not None and network < str(after[0]):
                continue
            merged = heapq.merge(
                *(_tail(network, gateway, run, positions, after) for gateway, run, positions in by_network[network])
            )
            items.extend(a for _, _, a in islice(merged, None if wanted is None else wanted - len(items)))
            if wanted is not None and len(items) >= wanted:
                break
        more = wanted is not None and len(items) >= wanted
        items = items[:limit] if limit is not None else items
        last_item = items[-1] if items else None
        next_key = (last_item.network, int(last_item.ip), last_item.gateway) if more and last_item else None
        return Page(items, total, next_key)

    def conflicts(self, index: TopologyIndex) -> list[tuple[str, int, list[str]]]:
        """Addresses announced by more than one gateway: (network, address, gateways), sorted; once
        per index."""
        cached = self._conflicts
        if cached is not None and cached[0] is index:
            return cached[1]
        by_address: dict[tuple[str, int], list[str]] = {}
        for (network, gateway), run in self._refresh(index).items():
            for ip in run.ips:
                by_address.setdefault((network, ip), []).append(gateway)
        # the gateways of one site's HA pair both announce what they see on their shared LAN: that
        # is one site, not a conflict
        found = sorted(
            (network, ip, sorted(gws))
            for (network, ip), gws in by_address.items()
            if len({index.site_of.get(g, g) for g in gws}) > 1
        )
        self._conflicts = (index, found)
        return found


def _tail(
    network: str, gateway: str, run: _Run, positions: Sequence[int], after: Key | None
) -> Iterator[tuple[int, str, Announcement]]:
    """The run's rows after the cursor, as (address, gateway, announcement) in merge order."""
    start = 0
    if after is not None and network == after[0]:
        ip, last_gateway = int(after[1]), str(after[2])
        find = bisect.bisect_left if gateway > last_gateway else bisect.bisect_right
        start = find(positions, ip, key=lambda p: run.ips[p])
    for p in positions[start:]:
        yield run.ips[p], gateway, run.announcements[p]
