"""`cloudgw burst policy add|list|show|update|delete`: when to rent public VMs and give them back.

A policy can be written with options (the common fields) or as a YAML/JSON file (`--file`, every
field: docs/burst.md), and the two combine: options override what the file says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cloudgw.cli import connect
from cloudgw.cli.common import admin_command, console
from cloudgw.cli.config_commands import _delete, _show, age, api, complete
from cloudgw.cli.output import Column, OutputOpt, emit
from cloudgw.cli.pages import Cursor, Every, Limit, Paging, Search, show_pages
from cloudgw.model.textio import parse_yaml

app = typer.Typer(help="Burst: rent public VMs into the stretched subnet as demand rises, release them as it falls.")
policy = typer.Typer(
    help="Burst policies: a demand signal, thresholds, bounds, budget and VM template.", no_args_is_help=True
)
app.add_typer(policy, name="policy")

Output = Annotated[str, OutputOpt]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")]
PolicyName = Annotated[str, typer.Argument(help="Policy name", autocompletion=complete("bursts"))]

COLUMNS: list[Column] = [
    ("NAME", lambda p: p["name"]),
    ("NETWORK", lambda p: p["network"]),
    ("SITE", lambda p: p["site"]),
    ("SIGNAL", lambda p: _signal(p["signal"])),
    ("OUT >", lambda p: p["scale_out_above"]),
    ("IN <", lambda p: p["scale_in_below"]),
    ("VMS", lambda p: f"{p['min_vms']}-{p['max_vms']} (step {p['step']})"),
    ("SIZE", lambda p: p["template"]["size"]),
    ("ENABLED", lambda p: p["enabled"]),
]


def _signal(signal: dict[str, Any]) -> str:
    detail = signal.get("query") or signal.get("pool") or signal.get("url") or ""
    return f"{signal['kind']}: {detail}" if detail else signal["kind"]


def _from_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        text = path.read_text()
    except OSError as exc:
        raise connect.UsageError(f"cannot read {path}: {exc.strerror}") from None
    data = parse_yaml(text, str(path))
    if not isinstance(data, dict):
        raise connect.UsageError(f"{path}: expected one policy (a mapping of its fields)")
    return data


def _body(
    file: Path | None,
    signal_kind: str | None,
    signal_url: str | None,
    query: str | None,
    signal_pool: str | None,
    image: str | None,
    size: str | None,
    user_data: Path | None,
    **fields: Any,
) -> dict[str, Any]:
    body = _from_file(file)
    body.update({k: v for k, v in fields.items() if v is not None})
    signal = {"kind": signal_kind, "url": signal_url, "query": query, "pool": signal_pool}
    if any(v is not None for v in signal.values()):
        body["signal"] = {**body.get("signal", {}), **{k: v for k, v in signal.items() if v is not None}}
    template: dict[str, Any] = {"image": image, "size": size}
    if user_data is not None:
        try:
            template["user_data"] = user_data.read_text()
        except OSError as exc:
            raise connect.UsageError(f"cannot read {user_data}: {exc.strerror}") from None
    if any(v is not None for v in template.values()):
        body["template"] = {**body.get("template", {}), **{k: v for k, v in template.items() if v is not None}}
    return body


File = Annotated[Path | None, typer.Option("--file", "-f", help="The policy as YAML or JSON (options override it)")]
SignalKind = Annotated[str | None, typer.Option(help="prometheus, http, pool or cpu")]
SignalUrl = Annotated[
    str | None, typer.Option(help="Prometheus server (prometheus, cpu) or the URL that answers a number")
]
Query = Annotated[str | None, typer.Option(help="PromQL whose first sample is the demand (prometheus)")]
SignalPool = Annotated[str | None, typer.Option(help="The private pool whose used share is the demand (pool)")]
Above = Annotated[float | None, typer.Option("--out-above", help="Add VMs when demand stays above this")]
Below = Annotated[float | None, typer.Option("--in-below", help="Remove VMs when demand stays below this")]
MinVms = Annotated[int | None, typer.Option("--min", help="Public VMs at least")]
MaxVms = Annotated[int | None, typer.Option("--max", help="Public VMs at most")]
Step = Annotated[int | None, typer.Option(help="VMs added or removed at a time")]
Warmup = Annotated[float | None, typer.Option(help="Seconds above the threshold before adding")]
Cooldown = Annotated[float | None, typer.Option(help="Seconds below the threshold before removing")]
Image = Annotated[str | None, typer.Option(help="Image of the VMs (AMI, Glance image, or the lab's)")]
Size = Annotated[str | None, typer.Option(help="Instance type or flavour")]
UserData = Annotated[Path | None, typer.Option(help="A file of cloud-init user-data for the VMs")]
Enabled = Annotated[bool | None, typer.Option("--enabled/--disabled", help="Whether the loop acts on it")]


@policy.command("add")
@admin_command
def policy_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Policy name")],
    network: Annotated[
        str | None, typer.Option(help="The stretched network", autocompletion=complete("networks"))
    ] = None,
    site: Annotated[
        str | None, typer.Option(help="The public site VMs launch at", autocompletion=complete("sites"))
    ] = None,
    file: File = None,
    signal_kind: SignalKind = None,
    signal_url: SignalUrl = None,
    query: Query = None,
    signal_pool: SignalPool = None,
    out_above: Above = None,
    in_below: Below = None,
    min_vms: MinVms = None,
    max_vms: MaxVms = None,
    step: Step = None,
    warmup: Warmup = None,
    cooldown: Cooldown = None,
    image: Image = None,
    size: Size = None,
    user_data: UserData = None,
    enabled: Enabled = None,
    output: Output = "table",
) -> None:
    """Add a burst policy.

    Example: cloudgw burst policy add web --network lab --site public --signal-kind pool --signal-pool private-lab
    --out-above 0.8 --in-below 0.3 --max 6 --image lab-vm --size small
    """
    body = _body(
        file, signal_kind, signal_url, query, signal_pool, image, size, user_data,
        name=name, network=network, site=site, scale_out_above=out_above, scale_in_below=in_below,
        min_vms=min_vms, max_vms=max_vms, step=step, warmup=warmup, cooldown=cooldown, enabled=enabled,
    )  # fmt: skip
    with api(ctx) as client:
        item = client.create("bursts", body)
    if output == "table":
        console.print(f"burst policy '{item['name']}' created", highlight=False)
    else:
        emit(item, output)


@policy.command("update")
@admin_command
def policy_update(
    ctx: typer.Context,
    name: PolicyName,
    file: File = None,
    signal_kind: SignalKind = None,
    signal_url: SignalUrl = None,
    query: Query = None,
    signal_pool: SignalPool = None,
    out_above: Above = None,
    in_below: Below = None,
    min_vms: MinVms = None,
    max_vms: MaxVms = None,
    step: Step = None,
    warmup: Warmup = None,
    cooldown: Cooldown = None,
    image: Image = None,
    size: Size = None,
    user_data: UserData = None,
    enabled: Enabled = None,
    output: Output = "table",
) -> None:
    """Change a burst policy: only what you name (a signal or template option keeps the block's other fields).

    Example: cloudgw burst policy update web --max 10 --cooldown 600
    """
    with api(ctx) as client:
        current = (
            client.get("bursts", name)
            if any(v is not None for v in (signal_kind, signal_url, query, signal_pool, image, size, user_data))
            else {}
        )
        body = _body(
            file, signal_kind, signal_url, query, signal_pool, image, size, user_data,
            scale_out_above=out_above, scale_in_below=in_below, min_vms=min_vms, max_vms=max_vms,
            step=step, warmup=warmup, cooldown=cooldown, enabled=enabled,
        )  # fmt: skip
        for block in ("signal", "template"):  # a block is replaced whole by the API: keep its other fields
            if block in body and block in current:
                body[block] = {**{k: v for k, v in current[block].items() if v is not None}, **body[block]}
        if not body:
            raise connect.UsageError("nothing to update: give at least one option (see --help)")
        item = client.update("bursts", name, body)
    if output == "table":
        console.print(f"burst policy '{name}' updated: {', '.join(body)}", highlight=False)
    else:
        emit(item, output)


@policy.command("list")
@admin_command
def policy_list(
    ctx: typer.Context,
    network: Annotated[str | None, typer.Option(help="Only this network's policies")] = None,
    site: Annotated[str | None, typer.Option(help="Only policies launching at this site")] = None,
    search: Search = None,
    limit: Limit = None,
    cursor: Cursor = None,
    every: Every = False,
    output: Output = "table",
) -> None:
    """List burst policies, a page at a time.

    Example: cloudgw burst policy list --site public
    """
    with api(ctx) as client:
        params = {"network": network, "site": site, "q": search}
        show_pages(client, "/api/v1/bursts", params, output, COLUMNS, Paging(limit, cursor, every), "policies")


@policy.command("show")
@admin_command
def policy_show(ctx: typer.Context, name: PolicyName, output: Output = "table") -> None:
    """Show one burst policy with every field.   Example: cloudgw burst policy show web"""
    _show(ctx, "bursts", name, output)


@policy.command("delete")
@admin_command
def policy_delete(ctx: typer.Context, name: PolicyName, yes: Yes = False) -> None:
    """Delete a burst policy.   Example: cloudgw burst policy delete web --yes"""
    _delete(ctx, "bursts", name, yes)


@app.command("status")
@admin_command
def burst_status(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="One policy (default: every policy)", autocompletion=complete("bursts"))
    ] = None,
    output: Output = "table",
) -> None:
    """Each policy's demand, what it decided last and why, and its VMs (pending, running, draining).

    Example: cloudgw burst status web
    """
    with api(ctx) as client:
        names = [name] if name else [p["name"] for p in client.list("bursts")]
        found = [client.json("GET", f"/api/v1/bursts/{n}/status") for n in names]
    if output != "table":
        emit(found if name is None else found[0], output)
        return
    if not found:
        console.print("no burst policies (cloudgw burst policy add --help)", highlight=False)
    for item in found:
        demand = "-" if item["demand"] is None else f"{item['demand']:.2f}"
        console.print(f"[bold]{item['policy']}[/]: demand {demand}; {item['reason']}", highlight=False, soft_wrap=True)
        if item["error"]:
            console.print(f"  [red]signal:[/] {item['error']}", highlight=False, soft_wrap=True)
        emit(
            item["vms"],
            "table",
            [
                ("IP", lambda v: v["ip"]),
                ("INSTANCE", lambda v: v["instance"]),
                ("STATE", lambda v: v["state"]),
                ("SINCE", lambda v: age(v["launched_at"])),
            ],
        )


@app.command("history")
@admin_command
def burst_history(
    ctx: typer.Context,
    name: PolicyName,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Decisions per page")] = 20,
    cursor: Cursor = None,
    every: Every = False,
    output: Output = "table",
) -> None:
    """A policy's decisions with their reasons, newest first.

    Example: cloudgw burst history web --limit 50
    """
    with api(ctx) as client:
        show_pages(
            client,
            f"/api/v1/bursts/{name}/history",
            {},
            output,
            [
                ("WHEN", lambda d: age(d["at"])),
                ("DEMAND", lambda d: "-" if d["demand"] is None else f"{d['demand']:.2f}"),
                ("VMS", lambda d: d["vms"]),
                ("CHANGE", lambda d: f"{d['change']:+d}" if d["change"] else ""),
                ("REASON", lambda d: d["reason"]),
            ],
            Paging(limit, cursor, every),
            "decisions",
        )
