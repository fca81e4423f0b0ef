"""`cloudgw agent ...`: run and manage the gateway agent on a gateway machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cloudgw import exitcodes, logs
from cloudgw.agent import keys
from cloudgw.agent.reconcile import Reconciler
from cloudgw.agent.settings import AgentSettings
from cloudgw.cli.common import console, fail, handle_errors, need_root
from cloudgw.dataplane.kernel import KernelDataplane

app = typer.Typer(help="Run and manage the gateway agent (on the gateway machine, as root).", no_args_is_help=True)

StateDir = Annotated[
    str | None,
    typer.Option("--state-dir", help="Directory of the private key and saved state [default: /var/lib/cloudgw]"),
]


def _settings(**overrides: object) -> AgentSettings:
    values = {k: v for k, v in overrides.items() if v is not None}
    return AgentSettings(**values)  # type: ignore[arg-type]


@app.command()
@handle_errors
def init(state_dir: StateDir = None) -> None:
    """Create this gateway's WireGuard key (once) and print its PUBLIC key.

    The private key stays in STATE_DIR/private.key (mode 0600) and is never printed or sent.

    Example: cloudgw agent init --state-dir /var/lib/cloudgw
    """
    settings = _settings(state_dir=state_dir)
    private = keys.load_or_create(settings.state_dir)
    console.print(keys.public_key_of(private), highlight=False)


@app.command()
@handle_errors
def run(
    state: Annotated[
        Path | None, typer.Option("--state", help="Follow this document (YAML or JSON) ...", envvar="CLOUDGW_STATE")
    ] = None,
    controller: Annotated[
        str | None,
        typer.Option("--controller", help="... or follow the controller at this URL", envvar="CLOUDGW_CONTROLLER"),
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="One-time join token (first start only)", envvar="CLOUDGW_JOIN_TOKEN")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="Public HOST:PORT peers should use (default: what the admin configured)")
    ] = None,
    heartbeat: Annotated[float, typer.Option(help="Seconds between heartbeats to the controller")] = 10.0,
    state_dir: StateDir = None,
    run_dir: Annotated[str | None, typer.Option(help="Pid files, status, logs [default: /run/cloudgw]")] = None,
    wg_socket_dir: Annotated[
        str | None, typer.Option(help="wireguard-go UAPI socket directory [default: /var/run/wireguard]")
    ] = None,
    interval: Annotated[float | None, typer.Option(help="Seconds between full reconciles [default: 10]")] = None,
    learn: Annotated[bool | None, typer.Option("--learn/--no-learn", help="Learn local endpoints")] = None,
    probe_rate: Annotated[float | None, typer.Option(help="ARP probes per second; 0 = off [default: 10]")] = None,
    metrics: Annotated[
        str | None, typer.Option(help="HOST:PORT for Prometheus /metrics; '' = off [default: 127.0.0.1:9108]")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Reconcile once and exit")] = False,
    teardown_on_exit: Annotated[
        bool,
        typer.Option(
            "--teardown-on-exit",
            help="Remove the data plane when stopped (ephemeral gateways, benchmarks); by default it keeps running",
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing")] = False,
    print_config: Annotated[bool, typer.Option("--print-config", help="Show effective settings and exit")] = False,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error")] = None,
) -> None:
    """Follow a desired-state document (a file, or the controller) and keep the kernel in line with it.

    Reconciles when the document changes and every --interval seconds (a route deleted by hand comes
    back). With --controller, joins once with --token, then watches its document, announces learned
    endpoints and sends heartbeats; the last document is saved, so the data plane is restored even
    while the controller is down. Stopping the agent leaves the data plane running.

    Examples:
      cloudgw agent run --state /etc/cloudgw/gateway.yaml
      cloudgw agent run --controller https://203.0.113.5:8443 --token cgwj_...
    """
    settings = _settings(
        state_dir=state_dir,
        run_dir=run_dir,
        wg_socket_dir=wg_socket_dir,
        interval=interval,
        learn=learn,
        probe_rate=probe_rate,
        log_level=log_level,
        metrics=metrics,
    )
    if print_config:
        for name, value, help_text in settings.describe():
            console.print(f"{name:14} {value:24} {help_text}", highlight=False)
        return
    logs.setup(settings.log_level)
    if (state is None) == (controller is None):
        fail("give exactly one of --state FILE or --controller URL", exitcodes.USAGE)
    need_root("cloudgw agent run")
    from cloudgw.agent.daemon import run_agent  # the daemon's imports only when it runs
    from cloudgw.memory import tune_gc

    tune_gc()
    run_agent(
        settings,
        state=state,
        controller=controller,
        token=token,
        endpoint=endpoint,
        heartbeat=heartbeat,
        once=once,
        dry_run=dry_run,
        teardown_on_exit=teardown_on_exit,
        report=lambda text: console.print(text, highlight=False),
    )


@app.command()
@handle_errors
def explain(
    src: Annotated[str, typer.Argument(help="The source VM's address")],
    dst: Annotated[str, typer.Argument(help="The destination VM's address")],
    state_dir: StateDir = None,
    run_dir: Annotated[str | None, typer.Option(help="[default: /run/cloudgw]")] = None,
    wg_socket_dir: Annotated[str | None, typer.Option(help="[default: /var/run/wireguard]")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
) -> None:
    """Check this gateway's side of a path alone, when the controller is away: where its last
    document says DST lives, the route and proxy-ARP entry, the WireGuard peer, its handshake, and a
    DF probe through the tunnel. Exit 0 when every hop is ok, 1 otherwise.

    Example: cloudgw agent explain 192.168.1.1 192.168.1.11
    """
    import json
    import time
    from ipaddress import IPv4Address

    from cloudgw.agent.answers import local_explain
    from cloudgw.agent.status import read_json
    from cloudgw.model.document import load_document

    need_root("cloudgw agent explain")
    settings = _settings(state_dir=state_dir, run_dir=run_dir, wg_socket_dir=wg_socket_dir)
    saved = Path(settings.state_dir) / "document.json"
    data = read_json(saved)
    if data is None:
        fail(f"no saved document at {saved}: has this gateway ever run (--state-dir)?")
    try:
        addresses = IPv4Address(src), IPv4Address(dst)
    except ValueError as exc:
        fail(f"{exc}: give two IPv4 addresses", exitcodes.USAGE)
    dataplane = KernelDataplane(
        socket_dir=settings.wg_socket_dir,
        run_dir=settings.run_dir,
        wg_gogc=settings.wg_gogc,
        wg_backend=settings.wg_backend,
    )
    result = local_explain(dataplane, load_document(data, source=str(saved)), *addresses, time.time())
    if output == "json":
        print(json.dumps(result, indent=1))
    else:
        for hop in result["hops"]:
            fix = f"  (fix: {hop['fix']})" if hop["fix"] else ""
            console.print(f"{hop['state']:8} {hop['hop']}: {hop['detail']}{fix}", highlight=False, soft_wrap=True)
        console.print(f"verdict: {result['verdict']} (checked on this gateway alone)", highlight=False)
    if result["verdict"] != "ok":
        raise typer.Exit(exitcodes.FAILED)


@app.command()
@handle_errors
def teardown(
    run_dir: Annotated[str | None, typer.Option(help="[default: /run/cloudgw]")] = None,
    wg_socket_dir: Annotated[str | None, typer.Option(help="[default: /var/run/wireguard]")] = None,
) -> None:
    """Remove everything cloudgw owns in this network namespace (cgw* links, its routes, proxy
    neighbours and nft table). Nothing else is touched.

    Example: cloudgw agent teardown
    """
    need_root("cloudgw agent teardown")
    settings = _settings(run_dir=run_dir, wg_socket_dir=wg_socket_dir)
    dataplane = KernelDataplane(
        socket_dir=settings.wg_socket_dir,
        run_dir=settings.run_dir,
        wg_gogc=settings.wg_gogc,
        wg_backend=settings.wg_backend,
    )
    actions = Reconciler(dataplane, keys.generate_private_key()).remove_all()
    console.print(f"removed {len(actions)} object(s)")


__all__ = ["app", "fail"]
