"""`cloudgw site|network|pool|gateway|connection list|show|add|update|delete`: the admin's view of
the topology, through the REST API only."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from cloudgw.cli import connect
from cloudgw.cli.common import admin_command, console, err_console
from cloudgw.cli.output import Column, OutputOpt, confirm, emit, human_bytes
from cloudgw.cli.pages import Cursor, Every, Limit, Paging, Search, show_pages
from cloudgw.files import write_private
from cloudgw.model.defaults import LISTEN_PORT, TUNNEL_MTU


def api(ctx: typer.Context) -> Any:
    """The API client for this invocation (connection settings from the root command)."""
    settings = ctx.find_root().obj or {}
    return connect.client(connect.resolve(settings.get("url"), settings.get("token"), settings.get("ca")))


def complete(kind: str) -> Callable[[str], list[str]]:
    """Shell completion of names, from the controller (silent when it cannot be reached)."""

    def names(incomplete: str) -> list[str]:
        try:
            with connect.client(connect.resolve(), timeout=2) as client:
                return [item["name"] for item in client.list(kind) if item["name"].startswith(incomplete)]
        except Exception:
            return []

    return names


def age(timestamp: Any) -> str:
    """How long ago, for an ISO timestamp or seconds since the epoch."""
    if not timestamp:
        return "never"
    from datetime import datetime

    if isinstance(timestamp, int | float):
        stamp = float(timestamp)
    else:
        stamp = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).timestamp()
    seconds = max(0.0, time.time() - stamp)
    if seconds < 90:
        return f"{seconds:.0f}s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def _role(item: dict[str, Any]) -> str:
    """An HA pair member's role and since when ("-" for a site's only gateway)."""
    role = item.get("role")
    if not role:
        return "-"
    since = age(item.get("role_since"))
    return (
        f"{role} (p{item.get('priority', 100)}, {since})" if since != "-" else f"{role} (p{item.get('priority', 100)})"
    )


COLUMNS: dict[str, list[Column]] = {
    "sites": [
        ("NAME", lambda i: i["name"]),
        ("PROVIDER", lambda i: i["provider"]),
        ("GATEWAYS", lambda i: i["gateways"]),
        ("CONNECTIONS", lambda i: i["connections"]),
        ("DESCRIPTION", lambda i: i["description"]),
    ],
    "networks": [
        ("NAME", lambda i: i["name"]),
        ("CIDR", lambda i: i["cidr"]),
        ("MODE", lambda i: i["mode"]),
        ("DESCRIPTION", lambda i: i["description"]),
    ],
    "pools": [
        ("NAME", lambda i: i["name"]),
        ("NETWORK", lambda i: i["network"]),
        ("SITE", lambda i: i["site"]),
        ("RANGE", lambda i: i["range"]),
        ("SIZE", lambda i: i["size"]),
    ],
    "gateways": [
        ("NAME", lambda i: i["name"]),
        ("SITE", lambda i: i["site"]),
        ("ROLE", lambda i: _role(i)),
        ("ENDPOINT", lambda i: i["endpoint"]),
        ("JOINED", lambda i: bool(i["public_key"])),
        ("ONLINE", lambda i: i["online"]),
        (
            "REVISION",
            lambda i: f"{i['applied_revision'] if i['applied_revision'] is not None else '-'}/{i['doc_revision']}",
        ),
        ("LAST SEEN", lambda i: age(i["last_seen"])),
        ("ERROR", lambda i: i["last_error"]),
    ],
    "connections": [
        ("NAME", lambda i: i["name"]),
        ("NETWORK", lambda i: i["network"]),
        ("SITES", lambda i: f"{i['site_a']} <-> {i['site_b']}"),
        ("ENABLED", lambda i: i["enabled"]),
        ("MTU", lambda i: i["mtu"]),
        ("HEALTH", lambda i: _health(i["health"])),
        ("RX/TX", lambda i: f"{human_bytes(i['health']['rx_bytes'])} / {human_bytes(i['health']['tx_bytes'])}"),
    ],
}
STYLE = {"up": "green", "degraded": "yellow", "down": "red", "pending": "cyan", "disabled": "dim"}


def _health(health: dict[str, Any]) -> str:
    state = health["state"]
    text = f"[{STYLE.get(state, 'white')}]{state}[/]"
    if health.get("handshake_age_s") is not None:
        text += f" (handshake {health['handshake_age_s']:.0f}s ago)"
    elif health.get("reason"):
        text += f" ({health['reason']})"
    return text


def _list(ctx: typer.Context, kind: str, output: str, paging: Paging, **filters: Any) -> None:
    """A page of a list (or every page), filtered on the server."""
    with api(ctx) as client:
        show_pages(client, f"/api/v1/{kind}", filters, output, COLUMNS[kind], paging, kind)


def _show(ctx: typer.Context, kind: str, name: str, output: str) -> None:
    with api(ctx) as client:
        item = client.get(kind, name)
    emit(item, output if output != "table" else "yaml")


def _add(ctx: typer.Context, kind: str, body: dict[str, Any], output: str) -> None:
    with api(ctx) as client:
        item = client.create(kind, {k: v for k, v in body.items() if v is not None})
    if output == "table":
        console.print(f"{kind[:-1]} '{item['name']}' created", highlight=False)
    else:
        emit(item, output)


def _update(ctx: typer.Context, kind: str, name: str, body: dict[str, Any], output: str) -> None:
    changes = {k: v for k, v in body.items() if v is not None}
    if not changes:
        raise connect.UsageError("nothing to update: give at least one option (see --help)")
    with api(ctx) as client:
        item = client.update(kind, name, changes)
    if output == "table":
        console.print(f"{kind[:-1]} '{name}' updated: {', '.join(changes)}", highlight=False)
    else:
        emit(item, output)


def _delete(ctx: typer.Context, kind: str, name: str, yes: bool, cascade: bool = False) -> None:
    what = f"{kind[:-1]} '{name}'" + (" and everything that uses it" if cascade else "")
    confirm(f"Delete {what}?", yes)
    with api(ctx) as client:
        client.delete(kind, name, cascade=cascade)
    console.print(f"{kind[:-1]} '{name}' deleted", highlight=False)


Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")]
Priority = Annotated[int, typer.Option(help="1-255; of a site's HA pair the higher is preferred as active")]
PublicKey = Annotated[
    str | None, typer.Option(help="an external site's router: its WireGuard public key (wg pubkey), made there")
]
Kind = Annotated[str, typer.Option(help="cloudgw (runs the agent) or external (a stock WireGuard router)")]
Routed = Annotated[
    list[str] | None, typer.Option("--routed", help="a routed prefix behind the site (CIDR); repeat for more")
]
RoutedVia = Annotated[
    str | None, typer.Option(help="a cloudgw site's routed prefixes: the router on its LAN that has them")
]
HaInterval = Annotated[int | None, typer.Option(help="HA pair: ms between hellos (default 200)")]
HaDead = Annotated[int | None, typer.Option(help="HA pair: ms of silence before failover (default 1000)")]
Failback = Annotated[
    bool | None, typer.Option("--failback/--no-failback", help="HA pair: the preferred gateway takes the role back")
]
Output = Annotated[str, OutputOpt]


def _name(kind: str, help_text: str) -> Any:
    return Annotated[str, typer.Argument(help=help_text, autocompletion=complete(kind))]


# sites ------------------------------------------------------------------------------------------
site = typer.Typer(help="Sites: a cloud or data centre with one gateway.", no_args_is_help=True)
SiteName = _name("sites", "Site name")


@site.command("list")
@admin_command
def site_list(
    ctx: typer.Context,
    provider: Annotated[str | None, typer.Option(help="Only sites of this provider")] = None,
    search: Search = None,
    limit: Limit = None,
    cursor: Cursor = None,
    every: Every = False,
    output: Output = "table",
) -> None:
    """List sites, a page at a time.

    Example: cloudgw site list --provider aws -o json
    """
    _list(ctx, "sites", output, Paging(limit, cursor, every), provider=provider, q=search)


@site.command("show")
@admin_command
def site_show(ctx: typer.Context, name: SiteName, output: Output = "table") -> None:
    """Show one site.

    Example: cloudgw site show private
    """
    _show(ctx, "sites", name, output)


@site.command("add")
@admin_command
def site_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="New site name")],
    provider: Annotated[
        str, typer.Option(help="generic, lab, aws or openstack (decides the reserved addresses)")
    ] = "generic",
    description: Annotated[str, typer.Option(help="Free text")] = "",
    ha_interval: HaInterval = None,
    ha_dead: HaDead = None,
    failback: Failback = None,
    kind: Kind = "cloudgw",
    routed: Routed = None,
    routed_via: RoutedVia = None,
    output: Output = "table",
) -> None:
    """Add a site.

    Example: cloudgw site add public --provider aws
    Example: cloudgw site add branch --kind external --routed 10.50.0.0/16   (a stock WireGuard router)
    """
    body: dict[str, Any] = {
        "name": name,
        "provider": provider,
        "description": description,
        "kind": kind,
        "routed": routed or [],
        **({"routed_via": routed_via} if routed_via else {}),
    }
    ha = _ha_timing({}, ha_interval, ha_dead, failback)
    if ha is not None:
        body["ha"] = ha
    _add(ctx, "sites", body, output)


@site.command("update")
@admin_command
def site_update(
    ctx: typer.Context,
    name: SiteName,
    new_name: Annotated[str | None, typer.Option("--name")] = None,
    provider: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    ha_interval: HaInterval = None,
    ha_dead: HaDead = None,
    failback: Failback = None,
    kind: Annotated[str | None, typer.Option(help="cloudgw or external")] = None,
    routed: Routed = None,
    routed_via: RoutedVia = None,
    output: Output = "table",
) -> None:
    """Change a site.

    Example: cloudgw site update public --description "eu-west-1"
    Example: cloudgw site update private --ha-dead 1500 --failback
    """
    body: dict[str, Any] = {
        "name": new_name,
        "provider": provider,
        "description": description,
        "kind": kind,
        "routed": routed,
        "routed_via": routed_via,
    }
    if (ha_interval, ha_dead, failback) != (None, None, None):
        with api(ctx) as client:
            current = client.get("sites", name).get("ha") or {}
        body["ha"] = _ha_timing(current, ha_interval, ha_dead, failback)
    _update(ctx, "sites", name, body, output)


def _ha_timing(
    current: dict[str, Any], interval: int | None, dead: int | None, failback: bool | None
) -> dict[str, Any] | None:
    """The site's HA timing with the given options changed (None: none given)."""
    if (interval, dead, failback) == (None, None, None):
        return None
    timing = {"interval_ms": 200, "dead_ms": 1000, "failback": False, **current}
    for key, value in (("interval_ms", interval), ("dead_ms", dead), ("failback", failback)):
        if value is not None:
            timing[key] = value
    return timing


@site.command("delete")
@admin_command
def site_delete(
    ctx: typer.Context,
    name: SiteName,
    cascade: Annotated[bool, typer.Option(help="Also delete its connections, pools and gateway")] = False,
    yes: Yes = False,
) -> None:
    """Delete a site (refused while it has connections, unless --cascade).

    Example: cloudgw site delete old --yes
    """
    _delete(ctx, "sites", name, yes, cascade)


@site.command("export-config")
@admin_command
def site_export_config(
    ctx: typer.Context,
    name: SiteName,
    format: Annotated[str, typer.Option("--format", help="wg-quick (a file for wg-quick) or commands (ip/wg)")] = (
        "wg-quick"
    ),
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write to this file (default: stdout)")] = None,
    interface: Annotated[str, typer.Option(help="the router's WireGuard interface")] = "wgcgw0",
    key_file: Annotated[str, typer.Option(help="where the router keeps its private key")] = "/etc/wireguard/wgcgw0.key",
) -> None:
    """The WireGuard configuration of an external site's stock router (no agent there).

    Public keys and addresses only: the router makes its own key. See docs/external.md.
    Example: cloudgw site export-config branch -o wgcgw0.conf
    """
    if format not in ("wg-quick", "commands"):
        raise connect.UsageError("--format is wg-quick or commands")
    with api(ctx) as client:
        params = {"format": format, "interface": interface, "key_file": key_file}
        text = client.request("GET", f"/api/v1/sites/{name}/export-config", params=params).text
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        console.print(f"wrote {out} ({format})", highlight=False)


# networks ---------------------------------------------------------------------------------------
network = typer.Typer(help="Networks: the address spaces stretched across sites.", no_args_is_help=True)
MODE_HELP = (
    "l3: proxy-ARP and host routes, works in every cloud; l2: VXLAN inside the tunnel, bridged with the LAN"
    " (on-premises and OpenStack sites; AWS sites stay l3 inside it; docs/l2.md)"
)
FLOOD_HELP = "L2 only: let broadcast, multicast and unknown unicast cross sites (off: ARP answered locally)"
NetworkName = _name("networks", "Network name")


@network.command("list")
@admin_command
def network_list(
    ctx: typer.Context,
    mode: Annotated[str | None, typer.Option(help="Only networks in this mode (l3 or l2)")] = None,
    search: Search = None,
    limit: Limit = None,
    cursor: Cursor = None,
    every: Every = False,
    output: Output = "table",
) -> None:
    """List networks, a page at a time.

    Example: cloudgw network list
    """
    _list(ctx, "networks", output, Paging(limit, cursor, every), mode=mode, q=search)


@network.command("show")
@admin_command
def network_show(ctx: typer.Context, name: NetworkName, output: Output = "table") -> None:
    """Show one network.

    Example: cloudgw network show lab
    """
    _show(ctx, "networks", name, output)


@network.command("add")
@admin_command
def network_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="New network name")],
    cidr: Annotated[str, typer.Option(help="The subnet, e.g. 192.168.1.0/24")],
    mode: Annotated[str, typer.Option(help=MODE_HELP)] = "l3",
    flood: Annotated[bool, typer.Option("--flood/--no-flood", help=FLOOD_HELP)] = False,
    description: Annotated[str, typer.Option()] = "",
    output: Output = "table",
) -> None:
    """Add a network.

    Example: cloudgw network add lab --cidr 192.168.1.0/24
    Example: cloudgw network add dc --cidr 10.20.0.0/16 --mode l2
    """
    body = {"name": name, "cidr": cidr, "mode": mode, "description": description, "flood": flood}
    _add(ctx, "networks", body, output)


@network.command("update")
@admin_command
def network_update(
    ctx: typer.Context,
    name: NetworkName,
    new_name: Annotated[str | None, typer.Option("--name")] = None,
    cidr: Annotated[str | None, typer.Option()] = None,
    mode: Annotated[str | None, typer.Option(help=MODE_HELP)] = None,
    flood: Annotated[bool | None, typer.Option("--flood/--no-flood", help=FLOOD_HELP)] = None,
    description: Annotated[str | None, typer.Option()] = None,
    output: Output = "table",
) -> None:
    """Change a network.

    Example: cloudgw network update lab --cidr 192.168.0.0/23
    Example: cloudgw network update dc --flood
    """
    body = {"name": new_name, "cidr": cidr, "mode": mode, "flood": flood, "description": description}
    _update(ctx, "networks", name, body, output)


@network.command("delete")
@admin_command
def network_delete(
    ctx: typer.Context,
    name: NetworkName,
    cascade: Annotated[bool, typer.Option(help="Also delete its pools and connections")] = False,
    yes: Yes = False,
) -> None:
    """Delete a network.

    Example: cloudgw network delete lab --cascade --yes
    """
    _delete(ctx, "networks", name, yes, cascade)


# pools ------------------------------------------------------------------------------------------
pool = typer.Typer(help="Pools: the addresses of one site in one network.", no_args_is_help=True)
PoolName = _name("pools", "Pool name")


@pool.command("list")
@admin_command
def pool_list(
    ctx: typer.Context,
    network: Annotated[str | None, typer.Option(help="Only this network")] = None,
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    search: Search = None,
    limit: Limit = None,
    cursor: Cursor = None,
    every: Every = False,
    output: Output = "table",
) -> None:
    """List pools, a page at a time.

    Example: cloudgw pool list --network lab
    """
    _list(ctx, "pools", output, Paging(limit, cursor, every), network=network, site=site, q=search)


@pool.command("show")
@admin_command
def pool_show(ctx: typer.Context, name: PoolName, output: Output = "table") -> None:
    """Show one pool.

    Example: cloudgw pool show public-lab
    """
    _show(ctx, "pools", name, output)


@pool.command("add")
@admin_command
def pool_add(
    ctx: typer.Context,
    network: Annotated[str, typer.Option(help="Network")],
    site: Annotated[str, typer.Option(help="Site whose VMs use these addresses")],
    range_: Annotated[str, typer.Option("--range", help="FIRST-LAST, a CIDR or one address")],
    name: Annotated[
        str | None, typer.Option(help="Pool name; needed for a site's second pool in a network [default: SITE-NETWORK]")
    ] = None,
    output: Output = "table",
) -> None:
    """Add a pool.

    A site's first pool in a network is named SITE-NETWORK unless --name says otherwise; give any
    further pool of that site in that network a --name of its own.

    Examples:
      cloudgw pool add --network lab --site public --range 192.168.1.11-192.168.1.20
      cloudgw pool add --network lab --site public --range 192.168.1.41-192.168.1.50 --name public-lab-2
    """
    _add(ctx, "pools", {"name": name, "network": network, "site": site, "range": range_}, output)


@pool.command("update")
@admin_command
def pool_update(
    ctx: typer.Context,
    name: PoolName,
    range_: Annotated[str | None, typer.Option("--range")] = None,
    new_name: Annotated[str | None, typer.Option("--name")] = None,
    output: Output = "table",
) -> None:
    """Change a pool's range.

    Example: cloudgw pool update public-lab --range 192.168.1.11-192.168.1.40
    """
    _update(ctx, "pools", name, {"range": range_, "name": new_name}, output)


@pool.command("delete")
@admin_command
def pool_delete(ctx: typer.Context, name: PoolName, yes: Yes = False) -> None:
    """Delete a pool.

    Example: cloudgw pool delete public-lab --yes
    """
    _delete(ctx, "pools", name, yes)


# gateways ---------------------------------------------------------------------------------------
gateway = typer.Typer(help="Gateways: the machine in each site that runs the agent.", no_args_is_help=True)
GatewayName = _name("gateways", "Gateway name")
LanAddress = Annotated[list[str] | None, typer.Option("--lan-address", help="Its address on a LAN (repeat)")]


@gateway.command("list")
@admin_command
def gateway_list(
    ctx: typer.Context,
    site: Annotated[str | None, typer.Option(help="Only this site's gateways")] = None,
    state: Annotated[str | None, typer.Option(help="online, offline (joined, silent) or pending (not joined)")] = None,
    search: Search = None,
    limit: Limit = None,
    cursor: Cursor = None,
    every: Every = False,
    output: Output = "table",
) -> None:
    """List gateways with their state, a page at a time.

    Example: cloudgw gateway list --state offline
    """
    _list(ctx, "gateways", output, Paging(limit, cursor, every), site=site, state=state, q=search)


@gateway.command("show")
@admin_command
def gateway_show(
    ctx: typer.Context,
    name: GatewayName,
    document: Annotated[bool, typer.Option("--document", help="Show the document it follows")] = False,
    output: Output = "table",
) -> None:
    """Show one gateway, or the document it follows.

    Example: cloudgw gateway show public-gw --document
    """
    if document:
        with api(ctx) as client:
            emit(client.document(name), output if output != "table" else "yaml")
        return
    _show(ctx, "gateways", name, output)


@gateway.command("add")
@admin_command
def gateway_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="New gateway name")],
    site: Annotated[str, typer.Option(help="Its site")],
    endpoint: Annotated[str | None, typer.Option(help="Public HOST:PORT peers send to")] = None,
    wan_interface: Annotated[str, typer.Option(help="Interface towards the Internet")] = "eth0",
    lan_interface: Annotated[str, typer.Option(help="Interface on the VMs' LAN")] = "eth1",
    lan_address: LanAddress = None,
    listen_port: Annotated[int, typer.Option(help="WireGuard UDP port")] = LISTEN_PORT,
    priority: Priority = 100,
    public_key: PublicKey = None,
    output: Output = "table",
) -> None:
    """Add a gateway. A second gateway at a site makes an HA pair (docs/ha.md).

    Example: cloudgw gateway add public-gw --site public --endpoint 203.0.113.20:51820 --lan-address 192.168.1.253
    """
    _add(
        ctx,
        "gateways",
        {
            "name": name,
            "site": site,
            "endpoint": endpoint,
            "wan_interface": wan_interface,
            "lan_interface": lan_interface,
            "lan_addresses": lan_address or [],
            "listen_port": listen_port,
            "priority": priority,
            **({"public_key": public_key} if public_key else {}),
        },
        output,
    )


@gateway.command("update")
@admin_command
def gateway_update(
    ctx: typer.Context,
    name: GatewayName,
    endpoint: Annotated[str | None, typer.Option()] = None,
    wan_interface: Annotated[str | None, typer.Option()] = None,
    lan_interface: Annotated[str | None, typer.Option()] = None,
    lan_address: LanAddress = None,
    listen_port: Annotated[int | None, typer.Option()] = None,
    priority: Annotated[int | None, typer.Option(help="1-255; of an HA pair the higher is preferred")] = None,
    public_key: PublicKey = None,
    output: Output = "table",
) -> None:
    """Change a gateway.

    Example: cloudgw gateway update public-gw --endpoint 203.0.113.21:51820
    """
    _update(
        ctx,
        "gateways",
        name,
        {
            "endpoint": endpoint,
            "wan_interface": wan_interface,
            "lan_interface": lan_interface,
            "lan_addresses": lan_address,
            "listen_port": listen_port,
            "priority": priority,
            "public_key": public_key,
        },
        output,
    )


@gateway.command("delete")
@admin_command
def gateway_delete(ctx: typer.Context, name: GatewayName, yes: Yes = False) -> None:
    """Delete a gateway.

    Example: cloudgw gateway delete old-gw --yes
    """
    _delete(ctx, "gateways", name, yes)


@gateway.command("join-token")
@admin_command
def gateway_join_token(
    ctx: typer.Context, name: GatewayName, ttl_hours: Annotated[float, typer.Option(help="Valid for this long")] = 24.0
) -> None:
    """Make a one-time join token for a gateway and print the agent command that uses it.

    Example: cloudgw gateway join-token public-gw
    """
    with api(ctx) as client:
        created = client.create(
            "tokens",
            {"name": f"join-{name}-{int(time.time())}", "role": "join", "gateway": name, "ttl_hours": ttl_hours},
        )
        url = created.get("controller_url") or client.url
    console.print(created["token"], highlight=False, soft_wrap=True)
    host = urlsplit(url).hostname or ""
    if not created.get("controller_url") and (host in ("localhost", "::1") or host.startswith("127.")):
        url = url.replace(host, "CONTROLLER-ADDRESS", 1)
        err_console.print(
            "note: this CLI talks to the controller over loopback, which a gateway cannot use; replace "
            "CONTROLLER-ADDRESS below (start the controller with --public-url to print it here)",
            highlight=False,
        )
    console.print(
        f"\nOn the gateway, as root:\n  cloudgw agent run --controller {url} --token {created['token']}",
        highlight=False,
        soft_wrap=True,
    )


@gateway.command("bootstrap")
@admin_command
def gateway_bootstrap(
    ctx: typer.Context,
    name: GatewayName,
    launch: Annotated[bool, typer.Option("--launch", help="Start the machine through the site's provider")] = False,
    image: Annotated[str | None, typer.Option(help="With --launch: AMI (ami-...) or Glance image ID")] = None,
    size: Annotated[str | None, typer.Option(help="With --launch: EC2 instance type or Nova flavor ID")] = None,
    key_name: Annotated[str | None, typer.Option(help="With --launch: an SSH key pair the cloud knows")] = None,
    package: Annotated[str, typer.Option(help="What pip installs on the gateway")] = "cloudgw",
    ttl_hours: Annotated[float, typer.Option(help="The join token is valid for this long")] = 24.0,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Write the user-data here (0600)")] = None,
) -> None:
    """Print cloud-init user-data that installs cloudgw on a new machine and joins it as this gateway.

    The user-data holds a fresh one-time join token (with the controller's CA fingerprint: the
    gateway pins the controller it joins). Give it to any cloud's "user data" field. With --launch
    the controller starts the machine itself through the site's provider (RunInstances on AWS, a
    Nova server on OpenStack) at the gateway's LAN address, and records its interface in the site's
    cloud block; the controller needs --public-url for that.

    Example: cloudgw gateway bootstrap public-gw --launch --image ami-0abc --size m5.large
    """
    body = {
        "launch": launch,
        "image": image,
        "size": size,
        "key_name": key_name,
        "package": package,
        "ttl_hours": ttl_hours,
    }
    with api(ctx) as client:
        result = client.json("POST", f"/api/v1/gateways/{name}/bootstrap", json=body)
    if file is not None:
        write_private(file, result["user_data"])
        err_console.print(f"user-data written to {file} (it holds a one-time join token)", highlight=False)
    else:
        print(result["user_data"], end="")
    if result.get("launched"):
        launched = result["launched"]
        err_console.print(
            f"launched {launched['instance']} (LAN interface {launched['interface']}); the site's cloud block now "
            f"names it. Watch it join: cloudgw gateway show {name}",
            highlight=False,
            soft_wrap=True,
        )


# connections ------------------------------------------------------------------------------------
connection = typer.Typer(help="Connections: two sites joined in one network.", no_args_is_help=True)
ConnectionName = _name("connections", "Connection name")


@connection.command("list")
@admin_command
def connection_list(
    ctx: typer.Context,
    network: Annotated[str | None, typer.Option(help="Only this network's connections")] = None,
    site: Annotated[str | None, typer.Option(help="Only connections with this site at one end")] = None,
    state: Annotated[str | None, typer.Option(help="up, degraded, down, pending or disabled")] = None,
    search: Search = None,
    limit: Limit = None,
    cursor: Cursor = None,
    every: Every = False,
    output: Output = "table",
) -> None:
    """List connections with their health, a page at a time.

    Example: cloudgw connection list --state down
    """
    _list(ctx, "connections", output, Paging(limit, cursor, every), network=network, site=site, state=state, q=search)


@connection.command("show")
@admin_command
def connection_show(ctx: typer.Context, name: ConnectionName, output: Output = "table") -> None:
    """Show one connection.

    Example: cloudgw connection show private-public-lab
    """
    _show(ctx, "connections", name, output)


@connection.command("add")
@admin_command
def connection_add(
    ctx: typer.Context,
    network: Annotated[str, typer.Option(help="Network to stretch")],
    site_a: Annotated[str, typer.Option(help="One site")],
    site_b: Annotated[str, typer.Option(help="The other site")],
    name: Annotated[str | None, typer.Option(help="[default: SITE_A-SITE_B-NETWORK]")] = None,
    mtu: Annotated[int, typer.Option(help="Tunnel MTU (an upper limit: each path lowers it as needed)")] = TUNNEL_MTU,
    keepalive: Annotated[int, typer.Option(help="Seconds; keeps NAT mappings open")] = 25,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it switched off")] = False,
    output: Output = "table",
) -> None:
    """Connect two sites in a network.

    Example: cloudgw connection add --network lab --site-a private --site-b public
    """
    _add(
        ctx,
        "connections",
        {
            "name": name,
            "network": network,
            "site_a": site_a,
            "site_b": site_b,
            "mtu": mtu,
            "keepalive": keepalive,
            "enabled": not disabled,
        },
        output,
    )


@connection.command("update")
@admin_command
def connection_update(
    ctx: typer.Context,
    name: ConnectionName,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable")] = None,
    mtu: Annotated[int | None, typer.Option()] = None,
    keepalive: Annotated[int | None, typer.Option()] = None,
    output: Output = "table",
) -> None:
    """Change a connection.

    Example: cloudgw connection update private-public-lab --disable
    """
    _update(ctx, "connections", name, {"enabled": enabled, "mtu": mtu, "keepalive": keepalive}, output)


@connection.command("delete")
@admin_command
def connection_delete(ctx: typer.Context, name: ConnectionName, yes: Yes = False) -> None:
    """Delete a connection.

    Example: cloudgw connection delete private-public-lab --yes
    """
    _delete(ctx, "connections", name, yes)
