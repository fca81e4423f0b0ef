"""Lab tooling: network namespaces by name, and sockets made inside one (pure namespace handling:
the files under /run/netns and setns, never netlink; links and addresses go through
cloudgw.dataplane.netlink like everything else). Lives in the lab, not in the data plane: a gateway
never creates namespaces."""

from __future__ import annotations

import os
import socket

from pyroute2 import netns

from cloudgw.dataplane.netlink import Netlink
from cloudgw.errors import DataplaneError


def list_namespaces() -> list[str]:
    return sorted(netns.listnetns())


def create_namespace(name: str) -> None:
    if name in netns.listnetns():
        raise DataplaneError(f"network namespace '{name}' already exists")
    netns.create(name)


def remove_namespace(name: str) -> None:
    if name in netns.listnetns():
        netns.remove(name)


def namespace_inode(name: str) -> tuple[int, int] | None:
    """(device, inode) identifying a named namespace; processes inside share it in /proc/PID/ns/net."""
    try:
        info = os.stat(f"/run/netns/{name}")
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino


def listening_socket(host: str, port: int, namespace: str | None = None) -> socket.socket:
    """A TCP listening socket bound inside `namespace` (None: this one). The socket keeps its
    namespace when handed to another process, so one server can listen in several namespaces."""
    if namespace:
        netns.pushns(namespace)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    finally:
        if namespace:
            netns.popns()
    return sock


def send_frames(interface: str, frames: list[bytes], namespace: str | None = None) -> None:
    """Send raw Ethernet frames out of an interface (in `namespace`)."""
    if namespace:
        netns.pushns(namespace)
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
            sock.bind((interface, 0))
            for frame in frames:
                sock.send(frame)
    finally:
        if namespace:
            netns.popns()


def bridge_port_forwarding(port: str, namespace: str | None = None) -> bool:
    with Netlink(namespace) as netlink:
        return netlink.bridge_port_forwarding(port)
