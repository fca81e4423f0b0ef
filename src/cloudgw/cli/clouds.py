"""`cloudgw preflight`: every known trap of the clouds, before any change; used by `cloudgw apply`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cloudgw import exitcodes
from cloudgw.cli.common import console
from cloudgw.cli.config_commands import api
from cloudgw.cli.output import OutputOpt, emit

SEVERITY_STYLE = {"error": "red", "warning": "yellow", "change": "cyan", "ok": "green"}
COLUMNS = [
    ("SITE", lambda f: f["site"]),
    ("CHECK", lambda f: f["check"]),
    ("", lambda f: f"[{SEVERITY_STYLE[f['severity']]}]{f['severity']}[/]"),
    ("FINDING", lambda f: f["message"]),
    ("FIX", lambda f: f["fix"]),
]


def run_preflight(client: Any, topology: dict[str, Any] | None) -> dict[str, Any]:
    body = {"topology": topology} if topology is not None else None
    result: dict[str, Any] = client.json("POST", "/api/v1/preflight", json=body)
    return result


def print_findings(result: dict[str, Any]) -> None:
    findings = result["findings"]
    if not findings:
        console.print("preflight: nothing to report", highlight=False)
        return
    emit(findings, "table", COLUMNS, title="preflight")
    counts = {s: sum(1 for f in findings if f["severity"] == s) for s in ("error", "warning", "change")}
    console.print(
        f"preflight: {counts['error']} error(s), {counts['warning']} warning(s), "
        f"{counts['change']} change(s) cloudgw will make in the clouds",
        highlight=False,
    )


def preflight(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Check this topology file instead of the live topology")
    ] = None,
    output: Annotated[str, OutputOpt] = "table",
) -> None:
    """Check the clouds before anything changes: every known trap, with the fix for each.

    Reads each driven site's cloud (AWS, OpenStack) and checks: addresses the cloud reserves that a
    remote pool holds (AWS keeps .1-.3 of every subnet), per-ENI address limits, the source/destination
    check, the tunnel port (security groups, network ACLs), port security and allocation pools on
    OpenStack, and the MTU budget of each connection. Severity: error (apply refuses), warning,
    change (cloudgw will do it). Exit 0 without errors, 1 with errors.

    Example: cloudgw preflight -f topology.yaml
    """
    from cloudgw.cli.operate import read_topology

    topology = read_topology(file).model_dump(mode="json") if file is not None else None
    with api(ctx) as client:
        result = run_preflight(client, topology)
    if output == "table":
        print_findings(result)
    else:
        emit(result, output)
    if not result["ok"]:
        raise typer.Exit(exitcodes.FAILED)
