"""Reconcile: observe -> render -> diff -> apply, idempotent. Called on every new document and on a
timer, so anything cloudgw owns that was changed by hand is put back, and anything it owns that is no
longer wanted is pruned. Nothing it does not own is touched."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cloudgw.dataplane.base import Dataplane, Observation
from cloudgw.dataplane.delta import endpoint_delta
from cloudgw.dataplane.kernelstate import KernelState
from cloudgw.dataplane.plan import Action, plan, summary
from cloudgw.dataplane.render import LocalFacts, render, route_mtus
from cloudgw.errors import InvalidInput, PartialApply, Problem
from cloudgw.logs import log_event
from cloudgw.model.addr import parse_host_port
from cloudgw.model.document import GatewayDocument

log = logging.getLogger("cloudgw.reconcile")


@dataclass
class ReconcileResult:
    revision: int
    actions: list[Action]
    duration_s: float
    observation: Observation | None = None
    counts: dict[str, int] = field(default_factory=dict)


def resolve_endpoint(endpoint: str) -> str:
    """DNS names become an address; WireGuard wants ip:port."""
    host, port = parse_host_port(endpoint)
    try:
        socket.inet_aton(host)
        return f"{host}:{port}"
    except OSError:
        pass
    infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
    return f"{infos[0][4][0]}:{port}"


def interface_problems(doc: GatewayDocument, observation: Observation) -> list[Problem]:
    """References to interfaces this machine does not have (checked before anything is changed)."""
    problems = []
    present = observation.interfaces
    if doc.gateway.wan_interface not in present:
        problems.append(
            Problem(
                "gateway.wan_interface",
                f"no interface '{doc.gateway.wan_interface}' on this gateway",
                f"use one of: {', '.join(sorted(present))}",
            )
        )
    for n, net in enumerate(doc.networks):
        if net.lan_interface not in present:
            problems.append(
                Problem(
                    f"networks[{n}].lan_interface",
                    f"no interface '{net.lan_interface}' on this gateway",
                    f"use one of: {', '.join(sorted(present))}",
                )
            )
    return problems


class Reconciler:
    """observe -> render -> diff -> apply.

    A full reconcile reads the kernel back (every owned object), so it also repairs hand edits; the
    agent runs one on its timer. When a new document arrives right after a clean reconcile, the fast
    path diffs against what that reconcile left instead of reading the kernel again, which is what
    keeps a one-endpoint change on a gateway with 10,000 endpoints in milliseconds. Any failure
    forgets that memory, so the next reconcile reads the kernel again.
    """

    def __init__(  # type: ignore[no-untyped-def]
        self,
        dataplane: Dataplane,
        private_key: str,
        resolver=resolve_endpoint,
        facts: Callable[[], LocalFacts] = LocalFacts,
    ) -> None:
        self.dataplane = dataplane
        self._private_key = private_key
        self.resolver = resolver
        self.facts = facts  # path MTUs and the controller's address, from the agent (I/O lives there)
        self._applied_facts: LocalFacts | None = None  # the facts the applied state was rendered with
        self._planned_facts: LocalFacts | None = None
        self._unresolved: dict[str, str] = {}  # peer name -> why its endpoint could not be used
        self._refused: dict[str, str] = {}  # peer public key -> why WireGuard refused it
        self.peer_problems: dict[str, str] = {}  # peer name -> what is wrong with it, for status
        self._applied: KernelState | None = None  # what the kernel holds after the last clean reconcile
        self._applied_doc: GatewayDocument | None = None  # the document that produced it
        self._observation: Observation | None = None  # the last full observation

    @property
    def refused(self) -> dict[str, str]:
        """What the last apply could not put in place (peers WireGuard refused, an L2 port), and why."""
        return dict(self._refused)

    def desired(self, doc: GatewayDocument, local: LocalFacts | None = None) -> KernelState:
        resolved = {}
        unresolved: dict[str, str] = {}
        for peer in doc.peers:
            if peer.endpoint:
                try:
                    resolved[peer.endpoint] = self.resolver(peer.endpoint)
                except (OSError, ValueError) as exc:  # UnicodeError is a ValueError: a bad name, not a crash
                    unresolved[peer.name] = f"endpoint {peer.endpoint} does not resolve ({exc})"
        for name, why in unresolved.items():
            if self.peer_problems.get(name) != why:
                log_event(log, "endpoint.unresolved", logging.WARNING, peer=name, error=why)
        self._unresolved = unresolved
        return render(doc, self._private_key, resolved, local if local is not None else self.facts())

    def plan(self, doc: GatewayDocument, full: bool = True) -> tuple[list[Action], Observation, KernelState]:
        known = self._observation
        local = self.facts()
        self._planned_facts = local
        if not full and self._applied is not None and known is not None and not interface_problems(doc, known):
            if self._applied_doc is not None and local == self._applied_facts:
                delta = endpoint_delta(self._applied_doc, doc, self._applied, route_mtus(doc, local))
                if delta is not None:
                    return delta[0], known, delta[1]
            desired = self.desired(doc, local)
            return plan(self._applied, desired), known, desired
        desired = self.desired(doc, local)
        observation = self.dataplane.observe(desired.sysctls.keys())
        problems = interface_problems(doc, observation)
        if problems:
            raise InvalidInput(problems, what=f"document revision {doc.revision}")
        self._observation = observation
        return plan(observation.state, desired), observation, desired

    def reconcile(self, doc: GatewayDocument, dry_run: bool = False, full: bool = True) -> ReconcileResult:
        started = time.monotonic()
        actions, observation, desired = self.plan(doc, full=full and not dry_run)
        partial: PartialApply | None = None
        if actions and not dry_run:
            self._applied = None
            try:
                self.dataplane.apply(actions)
            except PartialApply as exc:
                partial = exc  # everything else is in place; the refused peers are retried next time
        if not dry_run:
            self._refused = partial.skipped if partial else {}
            if partial is None:
                self._applied, self._applied_doc, self._applied_facts = desired, doc, self._planned_facts
            names = {peer.public_key: peer.name for peer in doc.peers}
            self.peer_problems = {
                **self._unresolved,
                **{
                    names.get(key, key): (f"refused by WireGuard: {why}" if key in names else why)
                    for key, why in self._refused.items()
                },
            }
        duration = time.monotonic() - started
        counts = summary(actions)
        if actions:
            log_event(
                log,
                "reconcile.applied" if not dry_run else "reconcile.planned",
                gateway=doc.gateway.name,
                rev=doc.revision,
                **counts,
                ms=round(duration * 1000, 1),
                path="full" if full else "fast",
            )
        return ReconcileResult(doc.revision, actions, duration, observation, counts)

    def remove_all(self) -> list[Action]:
        """Prune everything cloudgw owns (used by `cloudgw agent teardown`)."""
        self._applied = None
        observation = self.dataplane.observe()
        actions = plan(observation.state, KernelState())
        self.dataplane.apply(actions)
        return actions
