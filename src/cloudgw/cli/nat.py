"""`cloudgw nat egress|forward|sessions`: Internet access of the stretched subnet."""

from __future__ import annotations

from typing import Annotated

import typer

from cloudgw.cli import connect
from cloudgw.cli.common import admin_command, console
from cloudgw.cli.config_commands import api, complete
from cloudgw.cli.output import OutputOpt, confirm, emit
from cloudgw.errors import NotFound
from cloudgw.model.addr import parse_host_port

app = typer.Typer(
    help="Internet access: where each site's traffic leaves (egress), port forwards, NAT sessions.",
    no_args_is_help=True,
)
egress = typer.Typer(
    help="Where a site's Internet traffic leaves: local (default), via another site, or none.", no_args_is_help=True
)
forward = typer.Typer(help="Ports on a gateway's public address forwarded to a VM of its site.", no_args_is_help=True)
app.add_typer(egress, name="egress")
app.add_typer(forward, name="forward")
Output = Annotated[str, OutputOpt]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")]


@egress.command("list")
@admin_command
def egress_list(
    ctx: typer.Context,
    site: Annotated[str | None, typer.Option(help="Only this site's rules")] = None,
    network: Annotated[str | None, typer.Option(help="Only this network's rules")] = None,
    output: Output = "table",
) -> None:
    """List egress rules (sites without one leave to the Internet at their own gateway).

    Example: cloudgw nat egress list --site public
    """
    with api(ctx) as client:
        items = client.list("egress", site=site, network=network)
    emit(
        items,
        output,
        [
            ("SITE", lambda i: i["site"]),
            ("NETWORK", lambda i: i["network"]),
            ("MODE", lambda i: i["mode"]),
            ("VIA", lambda i: i["via"]),
        ],
    )


@egress.command("set")
@admin_command
def egress_set(
    ctx: typer.Context,
    site: Annotated[str, typer.Argument(autocompletion=complete("sites"))],
    network: Annotated[str, typer.Argument(autocompletion=complete("networks"))],
    mode: Annotated[str, typer.Argument(help="local, via or none")],
    via: Annotated[str | None, typer.Option(help="With mode via: the site whose gateway it leaves through")] = None,
) -> None:
    """Choose where a site's Internet traffic in a network leaves.

    Example: cloudgw nat egress set public lab via --via private
    """
    name = f"{site}-{network}"
    with api(ctx) as client:
        try:
            client.get("egress", name)
            client.update("egress", name, {"mode": mode, "via": via})
        except NotFound:
            client.create("egress", {"site": site, "network": network, "mode": mode, "via": via})
    console.print(f"{site} in {network}: egress {f'via {via}' if mode == 'via' else mode}", highlight=False)


@egress.command("reset")
@admin_command
def egress_reset(
    ctx: typer.Context,
    site: Annotated[str, typer.Argument(autocompletion=complete("sites"))],
    network: Annotated[str, typer.Argument(autocompletion=complete("networks"))],
) -> None:
    """Back to the default: the site leaves to the Internet at its own gateway.

    Example: cloudgw nat egress reset public lab
    """
    with api(ctx) as client:
        client.delete("egress", f"{site}-{network}")
    console.print(f"{site} in {network}: egress local", highlight=False)


@forward.command("list")
@admin_command
def forward_list(
    ctx: typer.Context,
    gateway: Annotated[str | None, typer.Option(help="Only this gateway")] = None,
    output: Output = "table",
) -> None:
    """List port forwards.

    Example: cloudgw nat forward list
    """
    with api(ctx) as client:
        items = client.list("forwards", gateway=gateway)
    emit(
        items,
        output,
        [
            ("NAME", lambda i: i["name"]),
            ("GATEWAY", lambda i: i["gateway"]),
            ("PUBLIC", lambda i: f"{i['protocol']}/{i['public_address'] or i['public_port']}"),
            ("TARGET", lambda i: f"{i['target_ip']}:{i['target_port']}"),
        ],
    )


@forward.command("add")
@admin_command
def forward_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the forward")],
    gateway: Annotated[
        str, typer.Option(help="The gateway whose public address it uses", autocompletion=complete("gateways"))
    ],
    public_port: Annotated[int, typer.Option(help="Port on the public address")],
    to: Annotated[str, typer.Option(help="VM IP:PORT at the gateway's site")],
    protocol: Annotated[str, typer.Option(help="tcp or udp")] = "tcp",
) -> None:
    """Forward a port of a gateway's public address to a VM.

    Example: cloudgw nat forward add web --gateway public-gw --public-port 8080 --to 192.168.1.11:80
    """
    try:
        host, port = parse_host_port(to)
    except ValueError as exc:
        raise connect.UsageError(f"--to: {exc}") from None
    with api(ctx) as client:
        created = client.create(
            "forwards",
            {
                "name": name,
                "gateway": gateway,
                "protocol": protocol,
                "public_port": public_port,
                "target_ip": host,
                "target_port": port,
            },
        )
    console.print(
        f"forward '{name}': {protocol}/{created['public_address'] or public_port} -> {host}:{port}", highlight=False
    )


@forward.command("delete")
@admin_command
def forward_delete(
    ctx: typer.Context, name: Annotated[str, typer.Argument(autocompletion=complete("forwards"))], yes: Yes = False
) -> None:
    """Remove a port forward (the port closes again).

    Example: cloudgw nat forward delete web --yes
    """
    confirm(f"Delete forward '{name}'?", yes)
    with api(ctx) as client:
        client.delete("forwards", name)
    console.print(f"forward '{name}' deleted", highlight=False)


@app.command("sessions")
@admin_command
def sessions(
    ctx: typer.Context, site: Annotated[str, typer.Argument(autocompletion=complete("sites"))], output: Output = "table"
) -> None:
    """The NAT sessions of a site's gateway (as of its last heartbeat).

    Example: cloudgw nat sessions private
    """
    with api(ctx) as client:
        data = client.json("GET", "/api/v1/nat/sessions", params={"site": site})
    if output != "table":
        emit(data, output)
        return
    for gateway in data["gateways"]:
        console.print(f"{gateway['gateway']}: {gateway['count'] or 0} NAT session(s)", highlight=False)
        emit(
            gateway["sessions"],
            "table",
            [
                ("KIND", lambda s: s["kind"]),
                ("PROTO", lambda s: s["protocol"]),
                ("STATE", lambda s: s["state"]),
                ("FROM", lambda s: s["source"]),
                ("TO", lambda s: s["destination"]),
                ("SEEN AS", lambda s: s["translated"]),
            ],
        )
