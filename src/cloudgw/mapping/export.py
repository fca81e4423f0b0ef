"""The configuration of an external site's stock WireGuard router (pure): a wg-quick file, or the
same as `ip`/`wg` commands (`cloudgw site export-config SITE`).

It holds what that router needs and nothing more: its listen port and MTU, and per peer gateway the
public key, the public endpoint and the addresses behind it. No private key of any site: the
router's own key is made on the router and only its public half is given to cloudgw. The router
takes no part in HA roles, so a peer site's pair is exported as it stands (the active gateway
carries the site's addresses): export again after a failover of a peer site."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

from cloudgw.mapping.documents import render_document
from cloudgw.mapping.index import TopologyIndex
from cloudgw.model.topology import Topology

INTERFACE = "wgcgw0"
KEY_FILE = f"/etc/wireguard/{INTERFACE}.key"


@dataclass(frozen=True)
class RouterPeer:
    name: str
    site: str
    public_key: str
    endpoint: str | None
    allowed: list[IPv4Network]
    keepalive: int
    active: bool


@dataclass(frozen=True)
class RouterConfig:
    router: str
    site: str
    revision: int
    listen_port: int
    mtu: int
    peers: list[RouterPeer]
    has_key: bool  # the controller knows the router's public key (else no peer accepts it yet)
    routed: list[IPv4Network]  # the router's own networks (the site's routed prefixes)
    interface: str = INTERFACE  # the WireGuard interface on the router
    key_file: str = KEY_FILE  # where the router keeps its private key (made there)


def router_config(
    topo: Topology,
    site: str,
    revision: int,
    index: TopologyIndex | None = None,
    interface: str = INTERFACE,
    key_file: str = KEY_FILE,
) -> RouterConfig:
    idx = index or TopologyIndex.build(topo)
    router = next(g for g in topo.gateways.values() if g.site == site)
    doc = render_document(topo, router.name, revision, idx)
    allowed = doc.allowed_ips()
    peers = [
        RouterPeer(
            peer.name,
            peer.site,
            peer.public_key,
            peer.endpoint,
            allowed[peer.name],
            peer.keepalive,
            peer.role == "active",
        )
        for peer in doc.peers
    ]
    return RouterConfig(
        router.name,
        site,
        revision,
        router.listen_port,
        doc.gateway.tunnel.mtu,
        peers,
        router.public_key is not None,
        list(topo.sites[site].routed),
        interface,
        key_file,
    )


def _header(config: RouterConfig, other: str) -> list[str]:
    lines = [
        f"# cloudgw: WireGuard for {config.router}, the router of external site '{config.site}'",
        f"# (revision {config.revision}). Public keys and addresses only: no secret of any site is in here.",
        "#",
        "# Once, on the router: make its key there (it never leaves the router), give cloudgw the public half:",
        f"#   umask 077; wg genkey > {config.key_file}",
        f'#   cloudgw gateway update {config.router} --public-key "$(wg pubkey < {config.key_file})"',
        "#   sysctl -w net.ipv4.ip_forward=1     # the router forwards for "
        + (", ".join(map(str, config.routed)) or "its LAN"),
        f"# {other}",
    ]
    if not config.has_key:
        lines.append(f"# NOTE: cloudgw has no public key for {config.router} yet: the peers refuse it until it has.")
    return lines


def wg_quick(config: RouterConfig) -> str:
    lines = _header(config, f"Then: wg-quick up ./{config.interface}.conf (the same as commands: --format commands)")
    lines += ["", "[Interface]", f"ListenPort = {config.listen_port}", f"MTU = {config.mtu}"]
    lines.append(f"PostUp = wg set %i private-key {config.key_file}")
    for peer in config.peers:
        lines += ["", "[Peer]", f"# {peer.name}, site {peer.site}{'' if peer.active else ' (standby of a pair)'}"]
        lines.append(f"PublicKey = {peer.public_key}")
        if peer.endpoint:
            lines.append(f"Endpoint = {peer.endpoint}")
        lines.append(f"AllowedIPs = {', '.join(str(n) for n in peer.allowed)}")
        if peer.keepalive:
            lines.append(f"PersistentKeepalive = {peer.keepalive}")
    return "\n".join(lines) + "\n"


def commands(config: RouterConfig) -> str:
    """The same, as `ip` and `wg` commands (a router without wg-quick, or wireguard-go)."""
    lines = _header(config, "Then run these (as root):")
    name = config.interface
    lines += [
        "",
        f"ip link add {name} type wireguard     # or, without the kernel module: wireguard-go {name}",
        f"wg set {name} listen-port {config.listen_port} private-key {config.key_file}",
    ]
    for peer in config.peers:
        parts = [f"wg set {name} peer {peer.public_key}"]
        if peer.endpoint:
            parts.append(f"endpoint {peer.endpoint}")
        parts.append(f"allowed-ips {','.join(str(n) for n in peer.allowed)}")
        if peer.keepalive:
            parts.append(f"persistent-keepalive {peer.keepalive}")
        lines.append(" ".join(parts) + f"     # {peer.name}, site {peer.site}")
    lines.append(f"ip link set {name} mtu {config.mtu} up")
    for peer in config.peers:
        for prefix in peer.allowed:
            lines.append(f"ip route replace {prefix} dev {name}")
    return "\n".join(lines) + "\n"
