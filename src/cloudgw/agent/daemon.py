"""The gateway agent as a daemon: wiring its parts for the document-file mode and the controller
mode, signals and the metrics endpoint. The CLI (`cloudgw agent run`) parses arguments and calls
`run_agent`; nothing here imports the controller, the lab or the CLI."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

from cloudgw import logs
from cloudgw.agent import keys
from cloudgw.agent.agent import Agent
from cloudgw.agent.learn import EndpointTable, Learner
from cloudgw.agent.pair import Pair, RoleClient, live_sessions
from cloudgw.agent.pathprobe import PathProber
from cloudgw.agent.reconcile import Reconciler
from cloudgw.agent.settings import AgentSettings
from cloudgw.agent.sources import DocumentSource, FileSource
from cloudgw.agent.status import read_json
from cloudgw.dataplane.kernel import KernelDataplane
from cloudgw.errors import DataplaneError


def run_agent(
    settings: AgentSettings,
    *,
    state: Path | None = None,
    controller: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    heartbeat: float = 10.0,
    once: bool = False,
    dry_run: bool = False,
    teardown_on_exit: bool = False,
    report: Callable[[str], None] = print,
) -> None:
    """Run the agent until SIGTERM/SIGINT (or reconcile once). `report` prints one-shot results."""
    private = keys.load_or_create(settings.state_dir)
    dataplane = KernelDataplane(
        socket_dir=settings.wg_socket_dir,
        run_dir=settings.run_dir,
        wg_gogc=settings.wg_gogc,
        wg_backend=settings.wg_backend,
    )
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
            report(f"  {action}")
        verb = "would apply" if dry_run else "applied"
        report(f"{verb} {len(result.actions)} change(s) for revision {document.revision}")
        for name, why in reconciler.peer_problems.items():
            report(f"not applied: {name}: {why}")
        if reconciler.refused and not dry_run:  # an unresolved peer name is reported, not a failure
            raise DataplaneError(f"{len(reconciler.refused)} object(s) not applied (above); the rest is in place")
        return
    agent = _build_agent(settings, source, reconciler, private)

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
    private_key: str,
    control: tuple[tuple[IPv4Address, int], ...] = (),
    roles: RoleClient | None = None,
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
    dataplane = reconciler.dataplane
    pair = Pair(
        private_key=private_key,
        controller=roles,
        health=lambda: live_sessions(dataplane.peer_stats(), time.time()),  # type: ignore[attr-defined]
        on_change=lambda: agent.wake(),
    )
    agent = Agent(
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
        pair=pair,
    )
    return agent


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
    from cloudgw.agent.link import ControllerLink, ControllerSource, LinkRoles, Reporter, control_endpoints

    public = keys.public_key_of(private)
    link = ControllerLink(url, settings.state_dir, join_token=token, endpoint=endpoint)
    link.join(public)
    source = ControllerSource(link, Path(settings.state_dir) / "document.json")
    agent = _build_agent(settings, source, reconciler, private, control=control_endpoints(url), roles=LinkRoles(link))
    reporter = Reporter(link, agent.heartbeat, agent.endpoints_by_network, interval=heartbeat)
    source.on_change = agent.wake
    source.on_question = agent.answer_path
    agent.table.on_change = lambda _endpoint, _event: reporter.wake()
    agent.on_applied = reporter.wake
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
