"""The only package that talks netlink. `pyroute` wraps pyroute2 for everything; `bulk` dumps and
writes routes and proxy neighbours in batches over a raw socket, for gateways with tens of thousands
of remote endpoints (profiling showed pyroute2 decoding at ~300 us a message)."""

from cloudgw.dataplane.netlink.pyroute import (
    LinkInfo,
    Neighbour,
    Netlink,
    read_sysctl,
    watch_neighbours,
    write_sysctl,
)

__all__ = [
    "LinkInfo",
    "Neighbour",
    "Netlink",
    "read_sysctl",
    "watch_neighbours",
    "write_sysctl",
]
