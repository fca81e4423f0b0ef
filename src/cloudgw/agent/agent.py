"""The agent's main loop: follow the document, reconcile on change and on a timer, keep the learner
pointed at the right LANs, and publish status. Its collaborators are constructor parameters, so the
same loop runs against the real kernel or a fake data plane."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

from cloudgw import __version__
from cloudgw.agent.answers import answer_path
from cloudgw.agent.learn import EndpointTable, Learner, LearnTarget
from cloudgw.agent.pair import Pair
from cloudgw.agent.pathprobe import PathProber
from cloudgw.agent.reconcile import Reconciler, ReconcileResult
from cloudgw.agent.sources import DocumentSource
from cloudgw.agent.status import status_record, write_json_atomic
from cloudgw.dataplane.base import Observation
from cloudgw.dataplane.kernelstate import WgPeer
from cloudgw.dataplane.pathmtu import PathFacts, PeerMtu, peer_mtu
from cloudgw.dataplane.plan import Action
from cloudgw.dataplane.render import LocalFacts
from cloudgw.errors import CloudgwError, InvalidInput
from cloudgw.logs import log_event
from cloudgw.model.document import GatewayDocument, dump_document

log = logging.getLogger("cloudgw.agent")


def learn_targets(doc: GatewayDocument, observation: Observation | None) -> list[LearnTarget]:
    targets = []
    for net in doc.networks:
        address = net.lan_address
        if address is None and observation is not None:
            for text in observation.addresses.get(net.lan_interface, []):
                interface = IPv4Interface(text)
                if interface.ip in net.cidr:
                    address = IPv4Address(interface.ip)
                    break
        if net.mode == "l2":  # a VM may move here from another bridging site, keeping its address
            movable = tuple(p.range for p in net.pools if p.site in net.l2_sites)
            remote = frozenset(int(e.ip) for e in net.remote_endpoints)
            targets.append(
                LearnTarget(net.name, net.lan_interface, address, tuple(doc.local_pools(net)), True, movable, remote)
            )
        else:
            targets.append(LearnTarget(net.name, net.lan_interface, address, tuple(doc.local_pools(net))))
    return targets


class Agent:
    def __init__(
        self,
        *,
        source: DocumentSource,
        reconciler: Reconciler,
        interval: float = 10.0,
        status_path: str | Path | None = None,
        document_path: str | Path | None = None,
        endpoints_path: str | Path | None = None,
        learner: Learner | None = None,
        table: EndpointTable | None = None,
        clock: Callable[[], float] = time.monotonic,
        poll: float = 0.5,
        prober: PathProber | None = None,
        control: tuple[tuple[IPv4Address, int], ...] = (),
        pair: Pair | None = None,
    ) -> None:
        self.source = source
        self.pair = pair  # an HA pair's role decides part of the document (agent/pair.py)
        self._configured: GatewayDocument | None = None
        self._pair_reported = 0
        self.reconciler = reconciler
        self.interval = interval
        self.poll_interval = poll
        self.status_path = Path(status_path) if status_path else None
        self.document_path = Path(document_path) if document_path else None
        self.endpoints_path = Path(endpoints_path) if endpoints_path else None
        self.learner = learner
        self._remote_before: dict[str, frozenset[int]] = {}  # per L2 network: addresses mapped elsewhere
        self.table = table or (learner.table if learner else EndpointTable())
        self.clock = clock
        self.applied: GatewayDocument | None = None
        self.on_applied: Callable[[], None] | None = None  # a new document (its cloud endpoints) to announce
        self.last_result: ReconcileResult | None = None
        self.last_error: str | None = None
        self.reconciles = 0
        self.errors = 0  # reconciles that failed or were refused
        self._next_due = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._status_version = -1
        self.prober = prober  # path MTU towards each peer (None: only the local WAN MTU is used)
        self.control = control  # the controller's address and port: the WAN filter never cuts them
        self._paths_changed = threading.Event()
        self._path_warnings: dict[str, str] = {}
        self._wan_mtu_cache: tuple[str, float, int | None] | None = None
        self._new_peers: dict[str, tuple[float, WgPeer]] = {}  # public key -> (added at, peer)
        if prober is not None:
            prober.on_change = self._on_paths_changed
            prober.wan_mtu = self.wan_mtu
        reconciler.facts = self.facts

    def _on_paths_changed(self) -> None:
        self._paths_changed.set()
        self._wake.set()

    def wan_mtu(self, doc: GatewayDocument | None = None) -> int | None:
        """The local WAN device's MTU (read at most every few seconds: reconciles are frequent)."""
        doc = doc or self.applied
        reader = getattr(self.reconciler.dataplane, "link_mtu", None)
        if doc is None or reader is None:
            return None
        name, now = doc.gateway.wan_interface, self.clock()
        cached = self._wan_mtu_cache
        if cached is None or cached[0] != name or now - cached[1] > 5.0:
            cached = (name, now, reader(name))
            self._wan_mtu_cache = cached
        return cached[2]

    def path_mtus(self, doc: GatewayDocument | None = None) -> dict[str, PeerMtu]:
        """Per peer: the tunnel MTU used, and why."""
        doc = doc or self.applied
        if doc is None:
            return {}
        probed = self.prober.results() if self.prober is not None else {}
        wan = self.wan_mtu(doc)
        return {
            peer.name: peer_mtu(peer.mtu or doc.gateway.tunnel.mtu, PathFacts(wan, probed.get(peer.name)))
            for peer in doc.peers
        }

    def facts(self) -> LocalFacts:
        doc = self.current() or self.applied
        paths = self.path_mtus(doc)
        for name, path in paths.items():
            said = f"{path.mtu}/{path.path}"
            if path.warning and self._path_warnings.get(name) != said:
                log_event(log, "mtu.lowered", logging.WARNING, peer=name, warning=path.warning)
            if path.warning:
                self._path_warnings[name] = said
            else:
                self._path_warnings.pop(name, None)
        fits = {name: path.mtu if path.path is not None else path.configured for name, path in paths.items()}
        return LocalFacts(peer_mtu=fits, control=self.control)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def current(self) -> GatewayDocument | None:
        """The document to apply: the controller's (or the file's), with this gateway's HA role."""
        doc = self.source.poll()
        if doc is None or self.pair is None:
            return doc
        if doc is not self._configured:
            self.pair.configure(doc)
            self._configured = doc
        return self.pair.overlay(doc)

    def step(self) -> ReconcileResult | None:
        """One pass: reconcile if the document changed or the timer is due."""
        doc = self.current()
        now = self.clock()
        result = None
        due = now >= self._next_due
        paths_changed = self._paths_changed.is_set()
        self._paths_changed.clear()
        if doc is not None and (doc != self.applied or due or paths_changed):
            # A new document takes the fast path; the timer's reconcile reads the kernel back and
            # repairs it, and a stream of new documents never postpones it.
            result = self._reconcile(doc, full=due)
            if due or self.last_error is not None:
                self._next_due = self.clock() + (self.interval if self.last_error is None else min(self.interval, 2.0))
        if self._new_peers:
            self._nudge_silent_peers()
        pair_news = self.pair is not None and self.pair.reported != self._pair_reported
        if self.table.version != self._status_version or result is not None or pair_news:
            self._pair_reported = self.pair.reported if self.pair is not None else 0
            if self.table.version != self._status_version or due:
                self.save_endpoints()
            self.write_status()
        return result

    def _reconcile(self, doc: GatewayDocument, full: bool = True) -> ReconcileResult | None:
        try:
            result = self.reconciler.reconcile(doc, full=full)
        except InvalidInput as exc:
            self.errors += 1
            self.last_error = str(exc)
            log_event(
                log,
                "reconcile.refused",
                logging.ERROR,
                rev=doc.revision,
                problems="; ".join(str(p) for p in exc.problems),
            )
            return None
        except CloudgwError as exc:
            self.errors += 1
            self.last_error = str(exc)
            log_event(log, "reconcile.failed", logging.ERROR, rev=doc.revision, error=exc)
            return None
        self.reconciles += 1
        self.last_error = None
        self.last_result = result
        if doc != self.applied:
            log_event(log, "document.applied", gateway=doc.gateway.name, rev=doc.revision, reason=doc.reason)
            if self.document_path is not None:
                write_json_atomic(self.document_path, dump_document(doc), mode=0o600)
        self.applied = doc
        if self.on_applied is not None:
            self.on_applied()
        for action in result.actions:
            if action.kind == "peer" and action.op == "add" and isinstance(action.desired, WgPeer):
                self._new_peers[action.desired.public_key] = (self.clock(), action.desired)
        if self.prober is not None:
            self.prober.set_targets(self._peer_addresses(doc))
        if self.learner is not None:
            targets = learn_targets(doc, result.observation)
            self.learner.update(targets)
            for target in targets:
                # an address the mapping newly places at another site (a VM that moved away) is
                # forgotten here, so it is announced afresh if that VM comes back
                before = self._remote_before.get(target.network)
                if before is not None:
                    self.table.forget(target.network, target.remote - before)
                self._remote_before[target.network] = target.remote
            added: dict[str, list[IPv4Address]] = {}
            for action in result.actions:
                if action.kind == "neighbour" and action.op == "add":
                    neighbour = action.desired
                    added.setdefault(neighbour.dev, []).append(neighbour.ip)  # type: ignore[attr-defined]
                elif action.kind == "address" and action.op == "add":  # an HA pair's virtual address moved here
                    lan = action.desired
                    added.setdefault(lan.dev, []).append(lan.address.ip)  # type: ignore[attr-defined]
            for device, addresses in added.items():
                self.learner.garp(device, addresses)
        return result

    NUDGE_AFTER_S = 1.5

    def _nudge_silent_peers(self) -> None:
        """A peer added moments ago with no handshake yet: its first initiation was probably lost
        (the other side did not know us yet), and WireGuard retries only after 5 s. Re-creating the
        peer once resets that back-off and sends a new initiation at once (its keepalive)."""
        now = self.clock()
        due = {key: peer for key, (added, peer) in self._new_peers.items() if now - added >= self.NUDGE_AFTER_S}
        if not due:
            return
        for key in due:
            del self._new_peers[key]
        stats = getattr(self.reconciler.dataplane, "peer_stats", None)
        if stats is None:
            return
        try:
            silent = [due[p.public_key] for p in stats() if p.public_key in due and not p.last_handshake]
            actions = [Action("delete", "peer", peer.public_key, None, peer) for peer in silent]
            actions += [Action("add", "peer", peer.public_key, peer, None) for peer in silent if peer.endpoint]
            if actions:
                self.reconciler.dataplane.apply(actions)
                log_event(log, "peer.nudged", peers=len(silent))
        except CloudgwError as exc:
            log_event(log, "peer.nudge_failed", logging.WARNING, error=exc)

    def _peer_addresses(self, doc: GatewayDocument) -> dict[str, str]:
        wanted = {}
        for peer in doc.peers:
            if peer.endpoint:
                try:
                    wanted[peer.name] = self.reconciler.resolver(peer.endpoint).rsplit(":", 1)[0]
                except OSError:
                    continue
        return wanted

    def run(self) -> None:
        if self.pair is not None:
            self.pair.start()
        if self.prober is not None:
            self.prober.start()
        if self.learner is not None:
            self.learner.start()
        try:
            while not self._stop.is_set():
                self.step()
                self._wake.wait(self.poll_interval)
                self._wake.clear()
        finally:
            if self.pair is not None:
                self.pair.stop()
            if self.prober is not None:
                self.prober.stop()
            if self.learner is not None:
                self.learner.stop()
            self.save_endpoints()
            self.write_status(stopping=True)

    def status(self) -> dict[str, Any]:
        observation = self.last_result.observation if self.last_result else None
        doc = self.applied
        return status_record(
            gateway=doc.gateway.name if doc else None,
            site=doc.gateway.site if doc else None,
            revision=doc.revision if doc else None,
            reconciles=self.reconciles,
            last_error=self.last_error or self.source.error,
            last_actions=self.last_result.counts if self.last_result else {},
            reconcile_ms=round(self.last_result.duration_s * 1000, 2) if self.last_result else None,
            endpoints=[e.as_dict() for e in self.table.snapshot()],
            peers=[vars(p) for p in observation.peer_stats] if observation else [],
            counters=observation.counters if observation else {},
            paths=self.path_report(),
            problems=self.peer_problem_report(),
            ha=self.pair.status() if self.pair is not None and self.pair.enabled else None,
        )

    def peer_problem_report(self) -> list[dict[str, str]]:
        """Peers that are not (fully) configured, and why; the others work regardless."""
        return [{"peer": name, "problem": why} for name, why in sorted(self.reconciler.peer_problems.items())]

    def path_report(self) -> list[dict[str, Any]]:
        """Per peer: tunnel MTU used, configured, the path MTU believed and its source, any warning."""
        return [{"peer": name, **path.as_dict()} for name, path in sorted(self.path_mtus().items())]

    def endpoints_by_network(self) -> dict[str, list[dict[str, Any]]]:
        """What to announce: learned endpoints of the networks in the applied document."""
        doc = self.applied
        if doc is None:
            return {}
        result: dict[str, list[dict[str, Any]]] = {net.name: [] for net in doc.networks}
        for endpoint in self.table.snapshot():
            if endpoint.network in result:
                result[endpoint.network].append({"ip": endpoint.ip, "mac": endpoint.mac})
        for net in doc.networks:  # what the site's cloud lists, unless the LAN already showed it
            if net.cloud_endpoints:
                learned = {str(item["ip"]) for item in result[net.name]}
                result[net.name] += [
                    {"ip": str(e.ip), "mac": e.mac} for e in net.cloud_endpoints if str(e.ip) not in learned
                ]
        return result

    def answer_path(self, question: dict[str, Any]) -> dict[str, Any]:
        """This gateway's side of one path, from its kernel now (explain; agent/answers.py)."""
        return answer_path(self.reconciler.dataplane, question)

    def nat_sessions(self) -> tuple[int, list[Any]]:
        reader = getattr(self.reconciler.dataplane, "nat_sessions", None)
        result: tuple[int, list[Any]] = reader() if reader is not None else (0, [])
        return result

    def heartbeat(self) -> dict[str, Any]:
        """The heartbeat body: applied revision, errors, fresh WireGuard statistics."""
        stats = getattr(self.reconciler.dataplane, "peer_stats", None)
        peers = [vars(p) for p in stats()] if stats is not None else self.status()["peers"]
        observation = self.last_result.observation if self.last_result else None
        count, sessions = self.nat_sessions()
        return {
            "version": __version__,
            "revision": self.applied.revision if self.applied else None,
            "nat_sessions": count,
            "sessions": [s.as_dict() for s in sessions],
            "last_error": self.last_error or self.source.error,
            "peers": peers,
            "counters": observation.counters if observation else {},
            "reconcile_ms": round(self.last_result.duration_s * 1000, 2) if self.last_result else None,
            "endpoints": len(self.table.snapshot()),
            "paths": self.path_report(),
            "problems": self.peer_problem_report(),
            "ha": self.pair.status() if self.pair is not None and self.pair.enabled else None,
        }

    def save_endpoints(self) -> None:
        """Keep the learned endpoints on disk (on change, on every timer reconcile, at stop), so a
        restarted agent announces them again instead of withdrawing them from the mapping."""
        if self.endpoints_path is not None:
            write_json_atomic(self.endpoints_path, self.table.dump(), mode=0o600)

    def write_status(self, stopping: bool = False) -> None:
        self._status_version = self.table.version
        if self.status_path is None:
            return
        record = self.status()
        record["stopping"] = stopping
        write_json_atomic(self.status_path, record)
