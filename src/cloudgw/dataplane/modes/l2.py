"""The L2 mode: VXLAN inside the WireGuard tunnel, bridged with the LAN (pure).

Per network, one VXLAN device (VNI from the network's name) is a port of the LAN bridge. Its
endpoint is the gateway's LAN address; the peers' LAN addresses are routed into the WireGuard tunnel,
so every VXLAN packet is encrypted and WireGuard's allowed-ips vouch for its outer source.

No learning and no flooding over the WAN by default; the mapping service says where each MAC lives:
- per remote VM: a VXLAN forwarding entry (MAC -> the peer's LAN address), a static, sticky bridge
  entry (MAC -> the VXLAN port) and a permanent ARP entry on the bridge. With neighbour suppression on
  the port, the bridge answers a local VM's ARP for a remote VM itself: no ARP crosses the WAN.
  (Suppression also swallows gratuitous ARP towards the tunnel, so a VM that moves is announced by
  the gateway where it arrives, through the mapping, never by its GARP.)
- `flood`: broadcast, multicast and unknown unicast are replicated to every L2 peer (head-end
  replication: one 00:00:00:00:00:00 entry per peer) and the bridge floods to the port; off, the
  port gets none of them.
Sites that cannot bridge (AWS, external routers, HA pairs) are reached as in L3 (routes and proxy
ARP), inside the same network.

Receiver checks (nft, inet input, before decapsulation; VXLAN header at transport offset 8, the
inner frame at 16): VXLAN only from the tunnel and only from an L2 peer's LAN address; the inner
source MAC must be one the mapping places behind that peer, an inner IPv4 or ARP source one of its
addresses; inner VLAN tags are dropped; without flood, inner group-addressed frames too. On the
bridge (nft bridge family): TCP MSS clamped to the VXLAN MTU both ways, and frames towards the
tunnel must carry a local source address.
MTU budget: the tunnel's MTU (per path, see pathmtu.py) minus 50 bytes of VXLAN (1420 -> 1370).
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from cloudgw.dataplane.kernelstate import BridgeArp, FdbEntry, VxlanLink
from cloudgw.dataplane.modes import Context, Desired, l3
from cloudgw.dataplane.nftrender import BRIDGE_FAMILY, rule
from cloudgw.model.addr import AddressRange
from cloudgw.model.defaults import VXLAN_OVERHEAD
from cloudgw.model.document import NetworkSpec

VXLAN_PORT = 4789
FLOOD_MAC = "00:00:00:00:00:00"
ZERO = IPv4Address("0.0.0.0")


def vxlan_name(net: NetworkSpec) -> str:
    return f"cgwvx{net.vni}"


def vxlan_mtu(ctx: Context, sites: set[str]) -> int:
    """The MTU budget: the narrowest L2 peer's tunnel MTU minus VXLAN's overhead."""
    tunnel = ctx.doc.gateway.tunnel.mtu
    paths = [ctx.mtus.get(ctx.site_of_peer[site]) or tunnel for site in sites]
    return min(paths, default=tunnel) - VXLAN_OVERHEAD


def render_network(ctx: Context, net: NetworkSpec, out: Desired) -> None:
    l2_sites = set(net.l2_sites) & ctx.peer_sites
    l3.render_network(ctx, net, out, ctx.peer_sites - l2_sites)
    assert net.lan_address is not None  # check_document refuses an l2 network without one
    name = vxlan_name(net)
    peers = ctx.doc.peer_by_name()
    vteps: dict[str, IPv4Address] = {}
    for site in sorted(l2_sites):
        peer = peers[ctx.site_of_peer[site]]
        vtep = next((a for a in peer.lan_addresses if a in net.cidr), None)
        if vtep is not None:
            vteps[site] = vtep
    mtu = vxlan_mtu(ctx, set(vteps))
    out.vxlans[name] = VxlanLink(name, net.vni, net.lan_address, net.lan_interface, mtu, net.flood)
    macs: dict[str, set[int]] = {site: set() for site in vteps}
    sources: dict[str, list[AddressRange]] = {site: [] for site in vteps}
    remote_ips: list[IPv4Address] = []  # bridged towards a peer: never a source from this LAN
    for pool in net.pools:
        if pool.site in vteps:
            sources[pool.site].append(pool.range)
    for endpoint in net.remote_endpoints:
        site = peers[endpoint.gateway].site
        if site not in vteps or endpoint.mac is None:
            continue  # an endpoint without a MAC cannot be bridged (the mapping has not seen it yet)
        mac = endpoint.mac.lower()
        out.fdb.add(FdbEntry(name, mac, vteps[site]))
        out.fdb.add(FdbEntry(name, mac, None))
        out.arp.add(BridgeArp(endpoint.ip, mac, net.lan_interface))
        remote_ips.append(endpoint.ip)
        macs[site].add(int(mac.replace(":", ""), 16))
        sources[site].append(AddressRange(endpoint.ip, endpoint.ip))  # a VM that moved keeps its address
    if net.flood:
        for vtep in vteps.values():
            out.fdb.add(FdbEntry(name, FLOOD_MAC, vtep))
    out.nft.extend(_receiver_rules(ctx.tunnel, name, net.flood, vteps, macs, sources))
    remote_macs = sorted({m for site in macs for m in macs[site]})
    out.nft.extend(_bridge_rules(name, mtu - 40, net, remote_ips, remote_macs))


def _payload(offset: int, length: int) -> dict[str, Any]:
    return {"payload": {"base": "th", "offset": offset, "len": length}}


def _match(left: Any, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _ints(ranges: list[AddressRange], flood: bool) -> dict[str, Any]:
    items: list[Any] = [int(r.first) if r.size == 1 else {"range": [int(r.first), int(r.last)]} for r in ranges]
    if flood:
        items.append(int(ZERO))  # DHCP's discover comes from 0.0.0.0
    return {"set": items}


INNER_MAC_SRC = _payload(176, 48)  # UDP 8 + VXLAN 8 + destination MAC 6 bytes
INNER_TYPE = _payload(224, 16)
INNER_IP_SRC = _payload(336, 32)  # after a 14-byte Ethernet header, the IPv4 source at 12
INNER_ARP_MAC = _payload(304, 48)  # ARP sender hardware address at 8
INNER_ARP_IP = _payload(352, 32)  # ARP sender protocol address at 14
INNER_GROUP_BIT = _payload(135, 1)  # the I/G bit of the inner destination MAC


def _drop(counter: str = "tunnel_spoofed") -> list[Any]:
    return [{"counter": counter}, {"drop": None}]


def _receiver_rules(
    tunnel: str,
    name: str,
    flood: bool,
    vteps: dict[str, IPv4Address],
    macs: dict[str, set[int]],
    sources: dict[str, list[AddressRange]],
) -> list[dict[str, Any]]:
    vxlan = _match({"payload": {"protocol": "udp", "field": "dport"}}, VXLAN_PORT)
    from_tunnel = _match({"meta": {"key": "iifname"}}, tunnel)
    saddr = {"payload": {"protocol": "ip", "field": "saddr"}}
    rules = [
        # VXLAN from anywhere but the tunnel would put frames on the bridge unencrypted and unchecked
        rule(
            "input",
            f"l2-lan {name}",
            [_match({"meta": {"key": "iifname"}}, tunnel, "!="), vxlan, *_drop("lan_spoofed")],
        ),
        rule("input", f"l2-vlan {name}", [from_tunnel, vxlan, _match(INNER_TYPE, {"set": [0x8100, 0x88A8]}), *_drop()]),
    ]
    known = [str(v) for v in vteps.values()]
    peer_check = _match(saddr, {"set": known}, "!=") if known else None
    rules.append(
        rule("input", f"l2-vtep {name}", [from_tunnel, vxlan, *([peer_check] if peer_check else []), *_drop()])
    )
    if not flood:
        rules.append(rule("input", f"l2-group {name}", [from_tunnel, vxlan, _match(INNER_GROUP_BIT, 1), *_drop()]))
    for site, vtep in vteps.items():
        head = [from_tunnel, _match(saddr, str(vtep)), vxlan]
        if not macs[site]:  # nothing is known behind that peer yet: nothing may come from it
            rules.append(rule("input", f"l2-mac {name} {site}", [*head, *_drop()]))
            continue
        known_macs = {"set": sorted(macs[site])}
        rules.append(rule("input", f"l2-mac {name} {site}", [*head, _match(INNER_MAC_SRC, known_macs, "!="), *_drop()]))
        ip_sources = _ints(sources[site], flood)
        rules.append(
            rule(
                "input",
                f"l2-ip {name} {site}",
                [*head, _match(INNER_TYPE, 0x0800), _match(INNER_IP_SRC, ip_sources, "!="), *_drop()],
            )
        )
        rules.append(
            rule(
                "input",
                f"l2-arp {name} {site}",
                [*head, _match(INNER_TYPE, 0x0806), _match(INNER_ARP_IP, ip_sources, "!="), *_drop()],
            )
        )
        rules.append(
            rule(
                "input",
                f"l2-arp-mac {name} {site}",
                [*head, _match(INNER_TYPE, 0x0806), _match(INNER_ARP_MAC, known_macs, "!="), *_drop()],
            )
        )
    return rules


def _bridge_rules(
    name: str, mss: int, net: NetworkSpec, remote_ips: list[IPv4Address], remote_macs: list[int]
) -> list[dict[str, Any]]:
    syn = _match({"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, ["syn", "rst"]]}, "syn")
    maxseg = {"tcp option": {"name": "maxseg", "field": "size"}}
    clamp = [syn, _match(maxseg, mss, ">"), {"mangle": {"key": maxseg, "value": mss}}]
    out = _match({"meta": {"key": "oifname"}}, name)
    rules = [
        rule("forward", f"l2-mss-out {name}", [out, *clamp], BRIDGE_FAMILY),
        rule("forward", f"l2-mss-in {name}", [_match({"meta": {"key": "iifname"}}, name), *clamp], BRIDGE_FAMILY),
    ]
    # frames from the LAN towards the tunnel: from the network (or DHCP's 0.0.0.0), never from an
    # address or MAC the mapping places at another site (the receiver checks again, per peer)
    saddr = {"payload": {"protocol": "ip", "field": "saddr"}}
    inside = {"set": [{"prefix": {"addr": str(net.cidr.network_address), "len": net.cidr.prefixlen}}, str(ZERO)]}
    spoofed = [{"counter": None}, {"drop": None}]
    rules.append(rule("forward", f"l2-lan-spoof {name}", [out, _match(saddr, inside, "!="), *spoofed], BRIDGE_FAMILY))
    if remote_ips:
        ips = {"set": [str(ip) for ip in sorted(remote_ips)]}
        rules.append(rule("forward", f"l2-lan-remote-ip {name}", [out, _match(saddr, ips), *spoofed], BRIDGE_FAMILY))
    if remote_macs:
        macs = {"set": [_mac_text(m) for m in sorted(remote_macs)]}
        ether = {"payload": {"protocol": "ether", "field": "saddr"}}
        rules.append(rule("forward", f"l2-lan-remote-mac {name}", [out, _match(ether, macs), *spoofed], BRIDGE_FAMILY))
    return rules


def _mac_text(value: int) -> str:
    raw = f"{value:012x}"
    return ":".join(raw[i : i + 2] for i in range(0, 12, 2))
