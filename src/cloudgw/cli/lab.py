"""`cloudgw lab ...`: build and explore whole scenarios in network namespaces on this machine."""

from __future__ import annotations

import json
import os
import time
from typing import Annotated

import typer
from rich.table import Table

from cloudgw import exitcodes
from cloudgw.cli.common import console, fail, handle_errors, need_root
from cloudgw.lab import lab as lablib
from cloudgw.lab.check import check as run_check
from cloudgw.lab.location import DEFAULT_LAB
from cloudgw.lab.runstate import LabPaths, check_lab_name
from cloudgw.lab.scenario import builtin_scenarios, find_scenario, site_gateways, vms
from cloudgw.lab.topology import node_names
from cloudgw.procs import alive

app = typer.Typer(help="Build and explore lab scenarios made of network namespaces (needs root).", no_args_is_help=True)

NameOpt = Annotated[
    str,
    typer.Option(
        "--name", help="Lab name: prefix of its namespaces ('cgw' gives cgw-private-vm1)", envvar="CLOUDGW_LAB"
    ),
]


def _paths(name: str) -> LabPaths:
    return LabPaths(check_lab_name(name))


def _progress(message: str) -> None:
    console.print(f"[cyan]•[/cyan] {message}", highlight=False)


@app.command()
@handle_errors
def up(
    scenario: Annotated[str, typer.Option("--scenario", "-s", help="Built-in scenario name or a YAML file")] = "seed",
    name: NameOpt = DEFAULT_LAB,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for agents and tunnels")] = 90.0,
    keep_on_failure: Annotated[bool, typer.Option(help="Leave a failed lab up for inspection")] = False,
) -> None:
    """Build a scenario: namespaces, links, the WAN with 1:1 NAT, gateways with their agents.

    Returns when every tunnel carries traffic. On failure, everything built is removed again.

    Example: cloudgw lab up --scenario seed
    """
    need_root("cloudgw lab up")
    loaded = find_scenario(scenario)
    paths = _paths(name)
    lablib.up(loaded, paths, progress=_progress, timeout=timeout, keep_on_failure=keep_on_failure)
    suffix = "" if name == DEFAULT_LAB else f" --name {name}"
    first = vms(loaded)[0].name
    console.print(
        f"\nNext:\n  cloudgw lab check{suffix}\n  cloudgw lab exec{suffix} {first} -- ping -c 3 "
        f"{vms(loaded)[-1].address}\n  cloudgw lab status{suffix}\n  cloudgw lab down{suffix}",
        highlight=False,
    )


@app.command()
@handle_errors
def down(name: NameOpt = DEFAULT_LAB) -> None:
    """Remove everything the lab made: processes, namespaces (with their links), files. Works after
    a crash too, and does nothing if the lab is not up.

    Example: cloudgw lab down
    """
    need_root("cloudgw lab down")
    counts = lablib.down(_paths(name), progress=_progress)
    console.print(
        f"lab '{name}' is down ({counts['processes']} process(es) stopped, {counts['namespaces']} namespaces deleted)",
        highlight=False,
    )


@app.command()
@handle_errors
def status(
    name: NameOpt = DEFAULT_LAB,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
) -> None:
    """Show the lab's nodes, agents and tunnels.

    Example: cloudgw lab status -o json
    """
    paths = _paths(name)
    scenario = lablib.load_lab_scenario(paths)
    present = set(paths.namespaces())
    supervisor = lablib.read_json(paths.supervisor) or {}
    gateways = []
    now = time.time()
    members = [(site, g.name) for site in scenario.sites if site.kind == "cloudgw" for g in site_gateways(site)]
    for site, node in members:  # an external site's router runs no agent: nothing to show here
        state = lablib.gateway_status(paths, node) or {}
        pid = supervisor.get("services", {}).get(node, {}).get("pid")
        peers = [
            {
                "public_key": p["public_key"][:8] + "…",
                "endpoint": p.get("endpoint"),
                "handshake_age_s": round(now - p["last_handshake"], 1) if p.get("last_handshake") else None,
                "rx_bytes": p.get("rx_bytes"),
                "tx_bytes": p.get("tx_bytes"),
            }
            for p in state.get("peers", [])
        ]
        gateways.append(
            {
                "node": node,
                "site": site.name,
                "agent_pid": pid,
                "agent_alive": alive(pid),
                "revision": state.get("revision"),
                "last_error": state.get("last_error"),
                "learned_endpoints": len(state.get("endpoints", [])),
                "peers": peers,
                "counters": state.get("counters", {}),
                "role": (state.get("ha") or {}).get("role"),
            }
        )
    nodes = {
        node: {"kind": kind, "namespace": paths.namespace(node), "up": paths.namespace(node) in present}
        for node, kind in node_names(scenario).items()
    }
    if output == "json":
        print(json.dumps({"lab": name, "scenario": scenario.name, "nodes": nodes, "gateways": gateways}, indent=1))
        return
    table = Table(title=f"lab '{name}' — scenario {scenario.name}")
    for column in ("gateway", "site", "agent", "rev", "learned", "peers (handshake age, rx/tx)", "spoof drops"):
        table.add_column(column)
    for gw in gateways:
        peers = (
            "\n".join(
                f"{p['endpoint']}: {p['handshake_age_s']}s, {p['rx_bytes']}/{p['tx_bytes']} B" for p in gw["peers"]
            )
            or "-"
        )
        agent = f"pid {gw['agent_pid']}" if gw["agent_alive"] else "[red]down[/red]"
        if gw["last_error"]:
            agent += f"\n[red]{gw['last_error'][:60]}[/red]"
        counters = gw["counters"]
        table.add_row(
            gw["node"] + (f"\n({gw['role']})" if gw["role"] else ""),
            gw["site"],
            agent,
            str(gw["revision"]),
            str(gw["learned_endpoints"]),
            peers,
            f"lan {counters.get('lan_spoofed', 0)} / tunnel {counters.get('tunnel_spoofed', 0)}",
        )
    console.print(table)
    missing = [n for n, info in nodes.items() if not info["up"]]
    console.print(
        f"{len(nodes) - len(missing)}/{len(nodes)} namespaces present"
        + (f"; missing: {', '.join(missing)}" if missing else ""),
        highlight=False,
    )


@app.command(name="exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@handle_errors
def exec_(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="Node name, e.g. private-vm1, public-gw, internet")],
    name: NameOpt = DEFAULT_LAB,
) -> None:
    """Run a command inside a lab node: cloudgw lab exec NODE -- CMD [ARGS...]

    Example: cloudgw lab exec private-vm1 -- ping -c 3 192.168.1.11
    """
    need_root("cloudgw lab exec")
    paths = _paths(name)
    scenario = lablib.load_lab_scenario(paths)
    nodes = node_names(scenario)
    if node not in nodes:
        fail(f"no node '{node}' in lab '{name}'; nodes are: {', '.join(nodes)}", exitcodes.USAGE)
    command = list(ctx.args)
    if not command:
        fail("no command given; write: cloudgw lab exec NODE -- CMD [ARGS...]", exitcodes.USAGE)
    os.execvp("ip", ["ip", "netns", "exec", paths.namespace(node), *command])


@app.command()
@handle_errors
def check(
    name: NameOpt = DEFAULT_LAB,
    same_site: Annotated[bool, typer.Option("--same-site", help="Also check pairs within one site")] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
) -> None:
    """Ping every VM from every VM of the other sites and print the matrix. Exits 1 on any failure.

    Example: cloudgw lab check
    """
    need_root("cloudgw lab check")
    paths = _paths(name)
    scenario = lablib.load_lab_scenario(paths)
    started = time.monotonic()
    machines = lablib.all_vms(paths, scenario)
    results = run_check(machines, paths, same_site=same_site)
    elapsed = time.monotonic() - started
    failed = [r for r in results if not r.ok]
    if output == "json":
        print(
            json.dumps(
                {
                    "pairs": len(results),
                    "failed": len(failed),
                    "seconds": round(elapsed, 2),
                    "results": [vars(r) for r in results],
                },
                indent=1,
            )
        )
    else:
        console.print(render_matrix([vm.name for vm in machines], results), highlight=False)
        verdict = "[green]all pass[/green]" if not failed else f"[red]{len(failed)} failed[/red]"
        console.print(f"{len(results)} directed pairs, {verdict} ({elapsed:.1f}s)")
        for result in failed[:20]:
            console.print(f"  [red]✗[/red] {result.source} -> {result.target} ({result.address})", highlight=False)
    if failed:
        raise typer.Exit(exitcodes.FAILED)


def render_matrix(names: list[str], results: list) -> str:  # type: ignore[type-arg]
    """Rows ping columns; columns are labelled by host number to fit 80 columns."""
    ok = {(r.source, r.target): r.ok for r in results}
    width = max(len(n) for n in names)
    labels = [n.rsplit("vm", 1)[-1] for n in names]
    lines = [" " * width + " " + "".join(f"{label:>3}" for label in labels)]
    for source in names:
        cells = []
        for target in names:
            if (source, target) not in ok:
                cells.append("  [dim]·[/dim]")
            else:
                cells.append("  [green]✓[/green]" if ok[(source, target)] else "  [red]✗[/red]")
        lines.append(f"{source:<{width}} " + "".join(cells))
    return "\n".join(lines)


@app.command()
@handle_errors
def restart(
    node: Annotated[str, typer.Argument(help="Gateway node, e.g. private-gw")], name: NameOpt = DEFAULT_LAB
) -> None:
    """Restart one gateway's agent (the data plane keeps running meanwhile).

    Example: cloudgw lab restart private-gw
    """
    need_root("cloudgw lab restart")
    old, new = lablib.restart_agent(_paths(name), node)
    console.print(f"agent on {node}: pid {old} -> {new}", highlight=False)


@app.command(name="fail")
@handle_errors
def fail_node(
    node: Annotated[str, typer.Argument(help="Gateway node, e.g. private-gw")], name: NameOpt = DEFAULT_LAB
) -> None:
    """Cut a gateway off like a power cut: its links go down and its processes are killed (SIGKILL).

    With an HA pair (`--scenario ha`) its partner takes over. Example: cloudgw lab fail private-gw
    """
    need_root("cloudgw lab fail")
    links = lablib.fail_gateway(_paths(name), node)
    console.print(f"{node}: links {', '.join(links) or '(none)'} down, processes killed", highlight=False)
    again = f"cloudgw lab heal {node}" + ("" if name == DEFAULT_LAB else f" --name {name}")
    console.print(f"bring it back with: {again}", highlight=False)


@app.command(name="heal")
@handle_errors
def heal_node(
    node: Annotated[str, typer.Argument(help="Gateway node, e.g. private-gw")], name: NameOpt = DEFAULT_LAB
) -> None:
    """Bring a failed gateway back: links up, agent started. It comes back as standby.

    Example: cloudgw lab heal private-gw
    """
    need_root("cloudgw lab heal")
    pid = lablib.heal_gateway(_paths(name), node)
    console.print(f"{node}: links up, agent pid {pid}", highlight=False)


@app.command(name="scenarios")
def list_scenarios() -> None:
    """List the built-in scenarios.

    Example: cloudgw lab scenarios
    """
    for scenario in builtin_scenarios():
        console.print(scenario)


@app.command()
@handle_errors
def stop(
    node: Annotated[str, typer.Argument(help="A lab service: controller, or a gateway (its agent)")],
    name: NameOpt = DEFAULT_LAB,
) -> None:
    """Stop a lab service and keep it stopped (the data plane of a gateway keeps running).

    Example: cloudgw lab stop controller
    """
    need_root("cloudgw lab stop")
    lablib.set_service_enabled(_paths(name), node, enabled=False)
    console.print(f"{node} stopped (start it again with `cloudgw lab start {node}`)", highlight=False)


@app.command()
@handle_errors
def start(
    node: Annotated[str, typer.Argument(help="A lab service stopped with `cloudgw lab stop`")],
    name: NameOpt = DEFAULT_LAB,
) -> None:
    """Start a lab service stopped with `cloudgw lab stop`.

    Example: cloudgw lab start controller
    """
    need_root("cloudgw lab start")
    pid = lablib.set_service_enabled(_paths(name), node, enabled=True)
    console.print(f"{node} started (pid {pid})", highlight=False)


@app.command()
@handle_errors
def env(name: NameOpt = DEFAULT_LAB) -> None:
    """Print shell exports that point `cloudgw` at this lab's controller.

    Example: eval "$(cloudgw lab env)"
    """
    from cloudgw.lab.controlplane import read_cli_config

    config = read_cli_config(_paths(name))
    if config is None:
        fail(f"lab '{name}' is not up", exitcodes.FAILED)
    assert config is not None
    print(
        f"export CLOUDGW_URL={config['url']}\nexport CLOUDGW_TOKEN={config['token']}\nexport CLOUDGW_CA={config['ca']}"
    )


vm_app = typer.Typer(help="Add and remove VMs in a running lab.", no_args_is_help=True)
app.add_typer(vm_app, name="vm")


@vm_app.command("add")
@handle_errors
def vm_add(
    site: Annotated[str, typer.Argument(help="Site of the new VM, e.g. public")],
    address: Annotated[
        str | None, typer.Option(help="Its address [default: the first free one of the site's lab pool]")
    ] = None,
    name: NameOpt = DEFAULT_LAB,
) -> None:
    """Boot a new VM at a site. Its gateway learns it and the other sites reach it, with no other step.

    Example: cloudgw lab vm add public --address 192.168.1.21
    """
    need_root("cloudgw lab vm add")
    paths = _paths(name)
    vm, ip, _ = lablib.add_vm(paths, lablib.load_lab_scenario(paths), site, address)
    console.print(f"{vm} is up at {ip}", highlight=False)


@vm_app.command("move")
@handle_errors
def vm_move(
    vm: Annotated[str, typer.Argument(help="The VM, e.g. private-vm3")],
    to: Annotated[str, typer.Option("--to", help="The site it moves to")],
    name: NameOpt = DEFAULT_LAB,
) -> None:
    """Move a VM to another site with its MAC and address (a live migration). In an L2 network the
    gateways follow it through the mapping; in an L3 network its address belongs to the old site's pool.

    Example: cloudgw lab vm move private-vm3 --to public
    """
    need_root("cloudgw lab vm move")
    paths = _paths(name)
    lablib.move_vm(paths, lablib.load_lab_scenario(paths), vm, to)
    console.print(f"{vm} moved to {to}", highlight=False)


@vm_app.command("delete")
@handle_errors
def vm_delete(
    vm: Annotated[str, typer.Argument(help="A VM added with `cloudgw lab vm add`")], name: NameOpt = DEFAULT_LAB
) -> None:
    """Remove a VM added with `cloudgw lab vm add`.

    Example: cloudgw lab vm delete public-vm21
    """
    need_root("cloudgw lab vm delete")
    lablib.delete_vm(_paths(name), vm)
    console.print(f"{vm} deleted", highlight=False)
