"""`cloudgw agent ...`: run and manage the gateway agent on a gateway machine."""

from __future__ import annotations

import logging
import signal
import time
from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated

import typer

from cloudgw import exitcodes, logs
from cloudgw.agent import keys
from cloudgw.agent.agent import Agent
from cloudgw.agent.learn import EndpointTable, Learner
from cloudgw.agent.pathprobe import PathProber
from cloudgw.agent.reconcile import Reconciler
from cloudgw.agent.settings import AgentSettings
from cloudgw.agent.sources import DocumentSource, FileSource
from cloudgw.agent.status import read_json
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
    private = keys.load_or_create(settings.state_dir)
    dataplane = KernelDataplane(socket_dir=settings.wg_socket_dir, run_dir=settings.run_dir)
    reconciler = Reconciler(dataplane, private)
    if controller is not None:
        _run_with_controller(controller, token, endpoint, heartbeat, settings, private, reconciler)
        return
    assert state is not None
    source = FileSource(state)
    document = source.load()  # refuse a bad document before touching anything
    if once or dry_run:
        result = reconciler.reconcile(document, dry_run=dry_run)
        for action in result.actions:
            console.print(f"  {action}", highlight=False)
        verb = "would apply" if dry_run else "applied"
        console.print(f"{verb} {len(result.actions)} change(s) for revision {document.revision}", highlight=False)
        return
    agent = _build_agent(settings, source, reconciler)

    _handle_signals(agent)
    logs.log_event(
        logging.getLogger("cloudgw.agent"),
        "agent.started",
        document=state,
        public_key=keys.public_key_of(private),
        interval=settings.interval,
    )
    _metrics(agent, settings)
    try:
        agent.run()
    finally:
        if teardown_on_exit:
            removed = reconciler.remove_all()
            logs.log_event(logging.getLogger("cloudgw.agent"), "agent.teardown", objects=len(removed))


def _build_agent(
    settings: AgentSettings,
    source: DocumentSource,
    reconciler: Reconciler,
    control: tuple[tuple[IPv4Address, int], ...] = (),
) -> Agent:
    """The agent with its learner; endpoints learned by an earlier run are restored first."""
    table = EndpointTable()
    endpoints_path = Path(settings.state_dir) / "endpoints.json"
    restored = table.restore(read_json(endpoints_path), time.time(), settings.expire_after)
    if restored:
        logs.log_event(logging.getLogger("cloudgw.agent"), "endpoints.restored", count=restored)
    learner = (
        Learner(table, probe_rate=settings.probe_rate, expire_after=settings.expire_after) if settings.learn else None
    )
    return Agent(
        source=source,
        reconciler=reconciler,
        interval=settings.interval,
        learner=learner,
        table=table,
        status_path=Path(settings.run_dir) / "status.json",
        document_path=Path(settings.state_dir) / "document.json",
        endpoints_path=endpoints_path,
        poll=settings.poll,
        prober=PathProber(wan_mtu=lambda: None, interval=settings.path_probe_interval)
        if settings.path_probe_interval > 0
        else None,
        control=control,
    )


def _metrics(agent: Agent, settings: AgentSettings) -> None:
    if not settings.metrics:
        return
    from cloudgw.agent.metrics import serve_metrics

    try:
        port = serve_metrics(agent, settings.metrics)
    except OSError as exc:  # a busy port must not stop the data plane
        logs.log_event(
            logging.getLogger("cloudgw.agent"),
            "metrics.unavailable",
            logging.WARNING,
            listen=settings.metrics,
            error=exc.strerror,
        )
        return
    logs.log_event(logging.getLogger("cloudgw.agent"), "metrics.serving", listen=settings.metrics, port=port)


def _handle_signals(agent: Agent) -> None:
    def on_signal(signum: int, _frame: object) -> None:
        logs.log_event(logging.getLogger("cloudgw.agent"), "agent.stopping", signal=signal.Signals(signum).name)
        agent.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _run_with_controller(
    url: str,
    token: str | None,
    endpoint: str | None,
    heartbeat: float,
    settings: AgentSettings,
    private: str,
    reconciler: Reconciler,
) -> None:
    from cloudgw.agent.controller import ControllerLink, ControllerSource, Reporter, control_endpoints

    public = keys.public_key_of(private)
    link = ControllerLink(url, settings.state_dir, join_token=token, endpoint=endpoint)
    link.join(public)
    source = ControllerSource(link, Path(settings.state_dir) / "document.json")
    agent = _build_agent(settings, source, reconciler, control=control_endpoints(url))
    reporter = Reporter(link, agent.heartbeat, agent.endpoints_by_network, interval=heartbeat)
    source.on_change = agent.wake
    agent.table.on_change = lambda _endpoint, _event: reporter.wake()
    _handle_signals(agent)
    logs.log_event(
        logging.getLogger("cloudgw.agent"),
        "agent.started",
        controller=url,
        gateway=link.gateway,
        public_key=public,
        interval=settings.interval,
    )
    source.start()
    reporter.start()
    _metrics(agent, settings)
    try:
        agent.run()
    finally:
        source.stop()
        reporter.stop()


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
    dataplane = KernelDataplane(socket_dir=settings.wg_socket_dir, run_dir=settings.run_dir)
    actions = Reconciler(dataplane, keys.generate_private_key()).remove_all()
    console.print(f"removed {len(actions)} object(s)")


__all__ = ["app", "fail"]
