"""The only package that talks netlink. `pyroute` wraps pyroute2 for everything; `bulk` dumps and
writes routes and proxy neighbours in batches over a raw socket, for gateways with tens of thousands
of remote endpoints (profiling showed pyroute2 decoding at ~300 us a message)."""

from cloudgw.dataplane.netlink.pyroute import (
    LinkInfo,
    Neighbour,
    Netlink,
    bridge_port_forwarding,
    create_namespace,
    list_namespaces,
    listening_socket,
    namespace_inode,
    read_sysctl,
    remove_namespace,
    send_frames,
    watch_neighbours,
    write_sysctl,
)

__all__ = [
    "LinkInfo",
    "Neighbour",
    "Netlink",
    "bridge_port_forwarding",
    "create_namespace",
    "list_namespaces",
    "listening_socket",
    "namespace_inode",
    "read_sysctl",
    "remove_namespace",
    "send_frames",
    "watch_neighbours",
    "write_sysctl",
]
