"""`cloudgw status|apply|export|audit`, `cloudgw endpoint ...`, `cloudgw token ...`, `cloudgw config ...`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from cloudgw import exitcodes
from cloudgw.cli import connect
from cloudgw.cli.common import admin_command, console, err_console
from cloudgw.cli.config_commands import COLUMNS, _health, age, api, complete
from cloudgw.cli.output import Column, OutputOpt, confirm, emit
from cloudgw.cli.pages import Cursor, Every, Limit, Paging, Search, show_pages
from cloudgw.errors import InvalidInput, Problem
from cloudgw.model.topologyfile import parse_file

Output = Annotated[str, OutputOpt]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")]


def status(
    ctx: typer.Context,
    limit: Annotated[
        int | None, typer.Option(min=0, max=1000, help="Gateways and connections listed [default: 50 in a table]")
    ] = None,
    output: Output = "table",
) -> None:
    """Every gateway and connection with its health, at a glance (counts of all, the first rows listed).

    Example: cloudgw status
    """
    shown = limit if limit is not None else (50 if output == "table" else None)
    with api(ctx) as client:
        data = client.json("GET", "/api/v1/status", params={"limit": shown})
    if output != "table":
        emit(data, output)
        return
    console.print(
        f"revision {data['revision']}: {data['sites']} sites, {data['networks']} networks, "
        f"{data['endpoints']} endpoints announced",
        highlight=False,
    )
    gateway_states, connection_states = data.get("gateway_states", {}), data.get("connection_states", {})
    for what, counts in (("gateways", gateway_states), ("connections", connection_states)):
        if counts:
            console.print(f"{what}: " + ", ".join(f"{n:,} {state}" for state, n in counts.items()), highlight=False)
    emit(data["gateways"], "table", COLUMNS["gateways"], title="gateways")
    emit(data["connections"], "table", COLUMNS["connections"], title="connections")
    for what, counts, listed in (
        ("gateways", gateway_states, data["gateways"]),
        ("connections", connection_states, data["connections"]),
    ):
        if sum(counts.values()) > len(listed):
            err_console.print(
                f"{len(listed)} of {sum(counts.values()):,} {what} listed; all: cloudgw {what[:-1]} list --all "
                f"(--state to pick)",
                highlight=False,
            )
    if data.get("providers"):
        emit(
            data["providers"],
            "table",
            [
                ("SITE", lambda p: p["site"]),
                ("PROVIDER", lambda p: p["provider"]),
                ("STATE", lambda p: p["state"]),
                ("CHECKED", lambda p: age(p["checked_at"])),
                ("ERROR", lambda p: p["error"] or "-"),
            ],
            title="clouds",
        )
    bad = [c["name"] for c in data["connections"] if c["health"]["state"] not in ("up", "disabled")]
    bad += [f"cloud of {p['site']}" for p in data.get("providers", []) if p["state"] in ("error", "refused")]
    offline = [g["name"] for g in data["gateways"] if not g["online"]]
    unlisted = [
        f"{n:,} more {what} {state}"
        for what, counts, listed, states in (
            ("gateways", gateway_states, offline, ("offline", "pending")),
            ("connections", connection_states, bad, ("down", "degraded", "pending")),
        )
        for state in states
        if (n := counts.get(state, 0) - sum(1 for x in data[what] if _state_of(what, x) == state)) > 0
    ]
    if bad or offline or unlisted:
        console.print(f"[yellow]attention:[/] {', '.join(offline + bad + unlisted)}", highlight=False)
    for gateway in data["gateways"]:
        for tunnel in gateway.get("tunnels", []):
            if tunnel.get("mtu_warning"):
                console.print(
                    f"[yellow]mtu:[/] {gateway['name']} -> {tunnel['peer']}: {tunnel['mtu_warning']}",
                    highlight=False,
                    soft_wrap=True,
                )


def _state_of(what: str, item: dict[str, Any]) -> str:
    if what == "connections":
        return str(item["health"]["state"])
    return "pending" if not item.get("public_key") else "online" if item["online"] else "offline"


def audit(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Rows per page (1-1000)")] = 20,
    kind: Annotated[str | None, typer.Option(help="site, network, pool, gateway, connection, token, endpoints")] = None,
    actor: Annotated[str | None, typer.Option(help="Only changes by this token")] = None,
    name: Annotated[str | None, typer.Option(help="Only changes of the object with this name")] = None,
    cursor: Cursor = None,
    every: Every = False,
    output: Output = "table",
) -> None:
    """Who changed what, newest first, a page at a time.

    Example: cloudgw audit --kind pool
    """
    with api(ctx) as client:
        show_pages(
            client,
            "/api/v1/audit",
            {"kind": kind, "actor": actor, "name": name},
            output,
            [
                ("REV", lambda i: i["revision"]),
                ("WHEN", lambda i: age(i["at"])),
                ("WHO", lambda i: i["actor"]),
                ("WHAT", lambda i: f"{i['action']} {i['kind']} {i['name']}"),
            ],
            Paging(limit, cursor, every),
            "changes",
        )


# apply / export ---------------------------------------------------------------------------------
def read_topology(path: Path) -> Any:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except FileNotFoundError:
        raise connect.UsageError(f"no file {path}") from None
    return parse_file(text, source=str(path))


def apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("--file", "-f", help="Topology file (YAML or JSON); - for stdin")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing")] = False,
    yes: Yes = False,
    no_preflight: Annotated[
        bool, typer.Option("--no-preflight", help="Skip the cloud checks (cloudgw preflight) that run first")
    ] = False,
    output: Output = "table",
) -> None:
    """Make the controller's topology match a file: creates, updates and deletes, shown as a plan first.

    The clouds are checked first (`cloudgw preflight -f`): an error refuses the apply. The file is
    checked as a whole before anything changes, and the plan is applied in one transaction, so a
    refusal leaves everything as it was. A second apply of the same file has nothing to do.
    Deletions ask for confirmation (--yes skips).

    Example: cloudgw apply -f topology.yaml --dry-run
    """
    from cloudgw.cli.clouds import print_findings, run_preflight

    spec = read_topology(file)
    body = spec.model_dump(mode="json")
    with api(ctx) as client:
        if not no_preflight:
            checked = run_preflight(client, body)
            if checked["findings"] and output == "table":
                print_findings(checked)
            if not checked["ok"] and not dry_run:
                raise InvalidInput(
                    [
                        Problem(f"{f['site']}.{f['check']}", f["message"], f["fix"])
                        for f in checked["findings"]
                        if f["severity"] == "error"
                    ],
                    what="apply (preflight)",
                )
        planned = client.json("PUT", "/api/v1/topology", json=body, params={"dry_run": "true"})
        steps = planned["steps"]
        if output != "table":
            if dry_run or not steps:
                emit(planned, output)
                return
        else:
            _print_plan(steps)
        if not steps:
            if output == "table":
                console.print("nothing to change: the controller already matches the file")
            return
        if dry_run:
            if output == "table":
                console.print("(dry run: nothing changed)")
            return
        deletes = [s for s in steps if s["op"] == "delete"]
        if deletes:
            confirm(f"Apply {len(steps)} change(s), including {len(deletes)} deletion(s)?", yes)
        params = {"expect_revision": planned["revision"], "prune": "true" if deletes else "false"}
        result = client.json("PUT", "/api/v1/topology", json=body, params=params)
    if output == "table":
        console.print(f"applied {len(result['steps'])} change(s); revision {result['revision']}", highlight=False)
    else:
        emit(result, output)


def _print_plan(steps: list[dict[str, Any]]) -> None:
    colours = {"create": "green", "update": "yellow", "delete": "red"}
    for step in steps:
        console.print(f"[{colours[step['op']]}]{step['text']}[/]", highlight=False, soft_wrap=True)
    counts = {op: sum(1 for s in steps if s["op"] == op) for op in ("create", "update", "delete")}
    if steps:
        console.print(
            f"plan: {counts['create']} to create, {counts['update']} to update, {counts['delete']} to delete",
            highlight=False,
        )


def export(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Write here instead of stdout")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="yaml or json")] = "yaml",
) -> None:
    """Write the live topology in the format `cloudgw apply` reads.

    Example: cloudgw export -f topology.yaml
    """
    if output not in ("yaml", "json"):
        raise connect.UsageError(f"--output must be yaml or json, not '{output}'")
    with api(ctx) as client:
        data = client.json("GET", "/api/v1/topology")
    revision = data.pop("revision", None)
    if output == "json":
        text = json.dumps(data, indent=1) + "\n"
    else:
        text = f"# cloudgw topology, exported at revision {revision}\n" + yaml.safe_dump(data, sort_keys=False)
    if file is None:
        print(text, end="")
    else:
        file.write_text(text)
        err_console.print(f"wrote {file}")


# endpoints --------------------------------------------------------------------------------------
endpoint = typer.Typer(help="Endpoints: the mapping of addresses to gateways.", no_args_is_help=True)
ENDPOINT_COLUMNS = [
    ("NETWORK", lambda i: i["network"]),
    ("IP", lambda i: i["ip"]),
    ("MAC", lambda i: i["mac"]),
    ("GATEWAY", lambda i: i["gateway"]),
    ("SITE", lambda i: i["site"]),
    ("EFFECTIVE", lambda i: i["effective"]),
]


@endpoint.command("list")
@admin_command
def endpoint_list(
    ctx: typer.Context,
    network: Annotated[str | None, typer.Option(help="Only this network")] = None,
    site: Annotated[str | None, typer.Option(help="Only endpoints behind this site's gateways")] = None,
    gateway: Annotated[str | None, typer.Option(help="Only this gateway's announcements")] = None,
    prefix: Annotated[str | None, typer.Option(help="Only addresses in this prefix, e.g. 192.168.1.0/28")] = None,
    state: Annotated[str | None, typer.Option(help="effective, or ignored (outside the site's pools)")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="Part of an IP or MAC, any case")] = None,
    limit: Limit = None,
    cursor: Cursor = None,
    every: Every = False,
    output: Output = "table",
) -> None:
    """List announced endpoints in address order, a page at a time, and conflicts.

    Examples: cloudgw endpoint list --site public;  cloudgw endpoint list --all -o json > mapping.json
    """
    params = {"network": network, "site": site, "gateway": gateway, "prefix": prefix, "state": state, "q": search}
    with api(ctx) as client:
        last = show_pages(
            client,
            "/api/v1/endpoints",
            params,
            output,
            ENDPOINT_COLUMNS,
            Paging(limit, cursor, every),
            "endpoints",
            json_head='{"items": [',
            json_tail=lambda page: (
                "], " + json.dumps({k: page.get(k) for k in ("total", "next_cursor", "conflicts")}, default=str)[1:]
            ),
        )
    if output == "table" and last is not None:
        for conflict in last.get("conflicts", []):
            console.print(
                f"[yellow]conflict:[/] {conflict['ip']} in {conflict['network']} announced by "
                f"{', '.join(conflict['gateways'])}",
                highlight=False,
            )


@endpoint.command("resolve")
@admin_command
def endpoint_resolve(
    ctx: typer.Context,
    network: Annotated[str, typer.Argument(autocompletion=complete("networks"))],
    ip: Annotated[str, typer.Argument()],
    output: Output = "table",
) -> None:
    """Where does an address live, since when, and why?   Example: cloudgw endpoint resolve lab 192.168.1.11"""
    with api(ctx) as client:
        data = client.resolve(network, ip)
    if output != "table":
        emit(data, output)
        return
    where = f" behind {data['gateway']} (site {data['site']}, MAC {data['mac'] or '-'})" if data["gateway"] else ""
    console.print(f"{ip} in {network}: [bold]{data['state']}[/]{where}", highlight=False)
    console.print(f"  {data['reason']}", highlight=False, soft_wrap=True)


endpoint.command("show")(endpoint_resolve)


@endpoint.command("validate")
@admin_command
def endpoint_validate(
    ctx: typer.Context,
    gateway: Annotated[str, typer.Argument(autocompletion=complete("gateways"))],
    source: Annotated[str, typer.Argument(help="Source address of a packet from that gateway")],
    network: Annotated[str | None, typer.Option()] = None,
    output: Output = "table",
) -> None:
    """Would a packet with this source be accepted from this gateway? Exits 1 if it would be dropped.

    Example: cloudgw endpoint validate private-gw 192.168.1.15
    """
    with api(ctx) as client:
        data = client.validate(gateway, source, network)
    if output != "table":
        emit(data, output)
    else:
        verdict = "[green]accepted[/]" if data["allowed"] else "[red]dropped[/]"
        console.print(f"{source} from {gateway}: {verdict}\n  {data['reason']}", highlight=False, soft_wrap=True)
    if not data["allowed"]:
        raise typer.Exit(exitcodes.FAILED)


# tokens -----------------------------------------------------------------------------------------
token = typer.Typer(help="API tokens: admin, read-only, and one-time join tokens.", no_args_is_help=True)


@token.command("list")
@admin_command
def token_list(
    ctx: typer.Context,
    role: Annotated[str | None, typer.Option(help="Only tokens of this role: admin, readonly or join")] = None,
    search: Search = None,
    limit: Limit = None,
    cursor: Cursor = None,
    every: Every = False,
    output: Output = "table",
) -> None:
    """List tokens (never their secrets), a page at a time.

    Example: cloudgw token list --role join
    """
    with api(ctx) as client:
        show_pages(
            client,
            "/api/v1/tokens",
            {"role": role, "q": search},
            output,
            TOKEN_COLUMNS,
            Paging(limit, cursor, every),
            "tokens",
        )


TOKEN_COLUMNS: list[Column] = [
    ("ID", lambda i: i["id"]),
    ("NAME", lambda i: i["name"]),
    ("ROLE", lambda i: i["role"]),
    ("GATEWAY", lambda i: i["gateway"]),
    ("EXPIRES", lambda i: i["expires_at"]),
    ("USED", lambda i: i["used_at"]),
]


@token.command("add")
@admin_command
def token_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the token")],
    role: Annotated[str, typer.Option(help="admin, readonly or join")] = "readonly",
    join: Annotated[str | None, typer.Option("--join", help="Make a join token for this gateway")] = None,
    ttl_hours: Annotated[float | None, typer.Option(help="Expire after this long")] = None,
) -> None:
    """Create a token; its text is shown once.

    Example: cloudgw token add grafana --role readonly
    """
    body = {"name": name, "role": "join" if join else role, "gateway": join, "ttl_hours": ttl_hours}
    with api(ctx) as client:
        created = client.create("tokens", {k: v for k, v in body.items() if v is not None})
    console.print(created["token"], highlight=False, soft_wrap=True)
    err_console.print("(shown once: store it now)")


@token.command("delete")
@admin_command
def token_delete(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Token name or id")], yes: Yes = False
) -> None:
    """Delete (revoke) a token.

    Example: cloudgw token delete grafana --yes
    """
    confirm(f"Revoke token '{name}'?", yes)
    with api(ctx) as client:
        client.delete("tokens", name)
    console.print(f"token '{name}' deleted", highlight=False)


# config -----------------------------------------------------------------------------------------
config = typer.Typer(help="Where the CLI finds its controller.", no_args_is_help=True)


@config.command("show")
@admin_command
def config_show(ctx: typer.Context) -> None:
    """Show the effective controller settings (the token is masked).

    Example: cloudgw config show
    """
    settings = ctx.find_root().obj or {}
    found = connect.resolve(settings.get("url"), settings.get("token"), settings.get("ca"))
    masked = f"{found.token[:16]}…" if found.token else "-"
    console.print(
        f"url:    {found.url}\ntoken:  {masked}\nca:     {found.ca or '(system CAs)'}\n"
        f"from:   {found.source}\nfile:   {connect.config_path()}",
        highlight=False,
    )


@config.command("save")
@admin_command
def config_save(ctx: typer.Context) -> None:
    """Save the settings given by flags or environment to the config file (0600).

    Example: cloudgw --url https://cgw.example.org:8443 --token cgw_... config save
    """
    settings = ctx.find_root().obj or {}
    found = connect.resolve(settings.get("url"), settings.get("token"), settings.get("ca"))
    path = connect.save(found)
    console.print(f"saved to {path}", highlight=False)


__all__ = ["InvalidInput", "_health"]
