"""`cloudgw explain SRC DST`: why can (or can't) one address of the stretched subnet reach another."""

from __future__ import annotations

from typing import Annotated

import typer

from cloudgw import exitcodes
from cloudgw.cli.common import console
from cloudgw.cli.config_commands import api
from cloudgw.cli.output import OutputOpt, emit
from cloudgw.client import Unreachable

MARK = {"ok": "[green]ok[/]", "broken": "[red]broken[/]", "warning": "[yellow]warning[/]", "unknown": "[dim]?[/]"}


def explain(
    ctx: typer.Context,
    src: Annotated[str, typer.Argument(help="The source VM's address")],
    dst: Annotated[str, typer.Argument(help="The destination VM's address")],
    network: Annotated[str | None, typer.Option(help="The network (default: the one that holds both)")] = None,
    output: Annotated[str, OutputOpt] = "table",
) -> None:
    """Walk the path from SRC to DST hop by hop and say which hop is broken and how to fix it.

    The hops: the network; where each address lives in the mapping (effective, outside every pool,
    announced by two sites); the connection between their sites; each gateway (online, its applied
    revision); the tunnel each way (the WireGuard peer and its key, allowed IPs, the last handshake,
    the path MTU). Exit 0 when every hop is ok, 1 otherwise. JSON output: docs/explain.md.

    Example: cloudgw explain 192.168.1.1 192.168.1.11
    """
    try:
        with api(ctx) as client:
            result = client.json("POST", "/api/v1/explain", json={"src": src, "dst": dst, "network": network})
    except Unreachable as exc:
        raise Unreachable(
            f"{exc}. Without the controller, each gateway can check its own side: on the source's gateway, "
            f"as root, `cloudgw agent explain {src} {dst}`"
        ) from None
    if output != "table":
        emit(result, output)
    else:
        emit(
            result["hops"],
            "table",
            [
                ("HOP", lambda h: h["hop"]),
                ("", lambda h: MARK[h["state"]]),
                ("DETAIL", lambda h: h["detail"]),
                ("FIX", lambda h: h["fix"]),
            ],
            title=f"{result['src']} -> {result['dst']} ({result['network'] or 'no network'})",
        )
        console.print(f"verdict: {MARK[result['verdict']]} ({result['took_ms']} ms)", highlight=False)
    if result["verdict"] != "ok":
        raise typer.Exit(exitcodes.FAILED)
