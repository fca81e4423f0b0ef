"""Netlink for the L2 mode (pyroute2): VXLAN ports of the LAN bridge, forwarding entries, bridge ARP.

Ownership: a VXLAN device named cgw* is cloudgw's, and so is every forwarding entry on it (its own
entries carry a destination; the bridge's are the static ones, learning being off). Bridge ARP
entries are permanent neighbour entries marked with cloudgw's protocol number.
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Address
from typing import Any

from cloudgw.dataplane.kernelstate import RT_PROTO, BridgeArp, FdbEntry, VxlanLink
from cloudgw.dataplane.netlink.pyroute import LinkInfo, Netlink
from cloudgw.errors import DataplaneError
from cloudgw.model.document import OWNED_PREFIX

NTF_SELF = 0x02
NTF_MASTER = 0x04
NTF_STICKY = 0x40
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
FLOOD_FLAGS = ("IFLA_BRPORT_UNICAST_FLOOD", "IFLA_BRPORT_MCAST_FLOOD", "IFLA_BRPORT_BCAST_FLOOD")


def vxlans(nl: Netlink, links: list[LinkInfo]) -> dict[str, VxlanLink]:
    """cloudgw's VXLAN ports, from the caller's dump of the links."""
    ipr: Any = nl._ipr
    by_index = {link.index: link.name for link in links}
    result: dict[str, VxlanLink] = {}
    for link in links:
        if link.kind != "vxlan" or not link.name.startswith(OWNED_PREFIX):
            continue
        msg = nl._call(f"get link {link.name}", ipr.get_links, link.index)[0]
        data = msg.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
        master = by_index.get(msg.get_attr("IFLA_MASTER") or 0, "")
        flood, settled = False, False
        if master:
            for port in nl._call(f"show bridge port {link.name}", ipr.brport, "show", index=link.index):
                info = port.get_attr("IFLA_PROTINFO")
                if info is not None:
                    flags = [bool(info.get_attr(key)) for key in FLOOD_FLAGS]
                    suppressing = bool(info.get_attr("IFLA_BRPORT_NEIGH_SUPPRESS"))
                    learning = bool(info.get_attr("IFLA_BRPORT_LEARNING"))
                    flood = all(flags)
                    # a port whose flags are not cloudgw's (by hand, or half set) differs from any
                    # desired value, so the plan rebuilds it
                    settled = any(flags) == all(flags) and suppressing and not learning
        local = data.get_attr("IFLA_VXLAN_LOCAL")
        result[link.name] = VxlanLink(
            name=link.name,
            vni=int(data.get_attr("IFLA_VXLAN_ID") or 0),
            local=IPv4Address(local) if local else IPv4Address("0.0.0.0"),
            bridge=master,
            mtu=link.mtu,
            flood=flood,
            port=int(data.get_attr("IFLA_VXLAN_PORT") or 0),
            settled=settled,
        )
    return result


def add_vxlan(nl: Netlink, vx: VxlanLink) -> None:
    ipr: Any = nl._ipr
    bridge = nl.link(vx.bridge)
    if bridge is None or bridge.kind != "bridge":
        raise DataplaneError(
            f"the L2 mode needs '{vx.bridge}' to be a Linux bridge with the LAN NIC as a port: "
            f"ip link add {vx.bridge} type bridge; ip link set NIC master {vx.bridge} (docs/l2.md)"
        )
    lan_mtu = _bridge_mtu(nl, vx.bridge)
    # A bridge whose address nobody set takes its smallest port's: the VXLAN port (a random address,
    # new on every rebuild) could change the gateway's LAN MAC, and every VM's ARP entry for the
    # gateway would point nowhere until it expires. Setting the address it has pins it (the kernel
    # keeps an address that was set); harmless when it was set already
    if bridge.mac:
        nl.set_link(vx.bridge, mac=bridge.mac)
    nl._call(
        f"add vxlan {vx.name}",
        ipr.link,
        "add",
        ifname=vx.name,
        kind="vxlan",
        vxlan_id=vx.vni,
        vxlan_local=str(vx.local),
        vxlan_port=vx.port,
        vxlan_learning=0,
    )
    index = nl.index(vx.name)
    nl._call(f"set link {vx.name}", ipr.link, "set", index=index, mtu=vx.mtu, master=nl.index(vx.bridge))
    flood = 1 if vx.flood else 0
    nl._call(
        f"set bridge port {vx.name}",
        ipr.brport,
        "set",
        index=index,
        learning=0,
        neigh_suppress=1,
        unicast_flood=flood,
        mcast_flood=flood,
        bcast_flood=flood,
    )
    # A bridge takes the smallest MTU of its ports: without this the VXLAN port would lower the
    # whole LAN's MTU (and the gateway's own) to the tunnel's. Set it back: frames too large for the
    # tunnel are the bridge's to drop (TCP never sends them: the MSS is clamped)
    nl.set_link(vx.bridge, mtu=lan_mtu)
    nl.set_link(vx.name, up=True)


def _bridge_mtu(nl: Netlink, bridge: str) -> int:
    """What the bridge's MTU is without cloudgw's port: its other ports' smallest, or its own."""
    ipr: Any = nl._ipr
    index = nl.index(bridge)
    ports = [
        int(msg.get_attr("IFLA_MTU"))
        for msg in nl._call("dump links", ipr.get_links)
        if msg.get_attr("IFLA_MASTER") == index and not str(msg.get_attr("IFLA_IFNAME")).startswith(OWNED_PREFIX)
    ]
    if ports:
        return min(ports)
    own = nl.link(bridge)
    return own.mtu if own is not None else 1500


def fdb(nl: Netlink, devices: list[str]) -> set[FdbEntry]:
    ipr: Any = nl._ipr
    result: set[FdbEntry] = set()
    for name in devices:
        for msg in nl._call(f"dump fdb {name}", ipr.fdb, "dump", ifindex=nl.index(name)):
            mac = str(msg.get_attr("NDA_LLADDR") or "").lower()
            dst = msg.get_attr("NDA_DST")
            if dst:
                result.add(FdbEntry(name, mac, IPv4Address(dst)))
            elif msg["state"] & NUD_NOARP and not msg["state"] & NUD_PERMANENT:
                result.add(FdbEntry(name, mac, None))  # the bridge's static entry (its own are permanent)
    return result


def apply_fdb(nl: Netlink, op: str, entry: FdbEntry) -> None:
    ipr: Any = nl._ipr
    found = ipr.link_lookup(ifname=entry.dev)
    if not found:
        if op == "delete":
            return  # gone with its device
        raise DataplaneError(f"no interface '{entry.dev}' for forwarding entry {entry}")
    args: dict[str, Any] = {"ifindex": found[0], "lladdr": entry.mac}
    if entry.dst is not None:
        args["dst"] = str(entry.dst)
        command = "append" if op != "delete" else "del"
    else:
        args.update(flags=NTF_MASTER | NTF_STICKY, state=NUD_NOARP)
        command = "replace" if op != "delete" else "del"
        if op == "delete":
            args["flags"] = NTF_MASTER
    nl._call(f"{op} fdb {entry}", ipr.fdb, command, missing_ok=op == "delete", **args)


def bridge_arp(nl: Netlink, bridges: list[str], proto: int = RT_PROTO) -> set[BridgeArp]:
    """cloudgw's permanent ARP entries on these bridges."""
    ipr: Any = nl._ipr
    result: set[BridgeArp] = set()
    for bridge in bridges:
        found = ipr.link_lookup(ifname=bridge)
        if not found:
            continue
        for msg in nl._call(f"dump neighbours {bridge}", ipr.get_neighbours, family=socket.AF_INET, ifindex=found[0]):
            if msg.get_attr("NDA_PROTOCOL") != proto or msg["flags"] & 0x08:  # NTF_PROXY: the L3 mode's
                continue
            mac = msg.get_attr("NDA_LLADDR")
            if mac:
                result.add(BridgeArp(IPv4Address(msg.get_attr("NDA_DST")), str(mac).lower(), bridge))
    return result


def apply_arp(nl: Netlink, op: str, entry: BridgeArp, proto: int = RT_PROTO) -> None:
    ipr: Any = nl._ipr
    found = ipr.link_lookup(ifname=entry.dev)
    if not found:
        if op == "delete":
            return
        raise DataplaneError(f"no interface '{entry.dev}' for ARP entry {entry}")
    if op == "delete":
        nl._call(f"delete arp {entry}", ipr.neigh, "del", dst=str(entry.ip), ifindex=found[0], missing_ok=True)
        return
    nl._call(
        f"add arp {entry}",
        ipr.neigh,
        "replace",
        dst=str(entry.ip),
        lladdr=entry.mac,
        ifindex=found[0],
        state=NUD_PERMANENT,
        NDA_PROTOCOL=proto,
    )
