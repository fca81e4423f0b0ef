"""The agent's link to the controller.

- Join once: the join token names the controller's CA by fingerprint; the agent fetches the CA, checks
  it, and from then on trusts only it. It sends its PUBLIC key and gets its own credential (0600).
- Watch: a long-poll of its document by revision; every new document is validated before use, and
  saved, so a restarted agent restores the data plane even while the controller is down.
- Report: learned endpoints are announced as soon as they change; a heartbeat carries WireGuard peer
  statistics and the applied revision.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cloudgw import __version__
from cloudgw.agent.pair import RoleReply
from cloudgw.agent.pair import Unreachable as PairUnreachable
from cloudgw.agent.status import read_json
from cloudgw.client.api import AgentClient, ApiError, Unreachable, fetch_ca
from cloudgw.errors import CloudgwError, InvalidInput, Problem
from cloudgw.files import private_dir, write_private
from cloudgw.logs import log_event
from cloudgw.model.document import GatewayDocument, load_document
from cloudgw.model.tokens import parse_token

log = logging.getLogger("cloudgw.agent")
CREDENTIALS = "controller.json"
CA_FILE = "ca.pem"


class JoinRefused(CloudgwError):
    """Retrying will not help: the token or the controller's identity is wrong."""

    exit_code = 78


def _write_private(path: Path, text: str) -> None:
    write_private(path, text)


JOIN_TIMEOUT_S = 60.0


def control_endpoints(url: str) -> tuple[tuple[IPv4Address, int], ...]:
    """The controller's IPv4 addresses and TCP port, for the WAN filter's exemption (empty when the
    name does not resolve now: the agent then relies on reconnecting)."""
    parsed = urlsplit(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parsed.hostname or "", port, socket.AF_INET, socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return ()
    return tuple(sorted({(IPv4Address(info[4][0]), port) for info in infos}))


class ControllerLink:
    def __init__(
        self, url: str, state_dir: str | Path, join_token: str | None = None, endpoint: str | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.state_dir = Path(state_dir)
        self.join_token = join_token
        self.endpoint = endpoint
        self.gateway: str | None = None
        self._credential: str | None = None

    @property
    def ca_path(self) -> Path:
        return self.state_dir / CA_FILE

    def load(self) -> bool:
        data = read_json(self.state_dir / CREDENTIALS)
        if isinstance(data, dict) and data.get("url") == self.url and data.get("credential"):
            self.gateway, self._credential = data.get("gateway"), data["credential"]
            return self.ca_path.exists()
        return False

    def join(
        self, public_key: str, retry_for: float = float("inf"), sleep: Callable[[float], None] = time.sleep
    ) -> str:
        """Join (unless already joined). Retries while the controller is unreachable."""
        if self.load():
            return str(self.gateway)
        if not self.join_token:
            raise JoinRefused("this gateway has not joined a controller yet; pass --token JOIN_TOKEN")
        parsed = parse_token(self.join_token)
        if parsed is None or parsed.ca_fingerprint is None:
            raise JoinRefused(
                "the join token is malformed (expected cgwj_<id>_<secret>_<ca-fingerprint>, as printed "
                "by `cloudgw token add --join GATEWAY`)"
            )
        deadline, delay = time.monotonic() + retry_for, 1.0
        attempted = False  # a request may have reached the controller and its answer been lost
        while True:
            try:
                ca = fetch_ca(self.url, parsed.ca_fingerprint)
                # A join is done once and its token works once: wait long for the answer, since a
                # retry after a lost answer finds the token used (a busy controller at 1,000 joins
                # took over the usual 10 s)
                client = AgentClient(self.url, token=self.join_token, ca=ca, timeout=JOIN_TIMEOUT_S)
                with client:
                    answer = client.join(public_key, endpoint=self.endpoint, version=__version__)
                break
            except Unreachable as exc:
                if time.monotonic() + delay > deadline:
                    raise
                attempted = attempted or exc.timed_out
                log_event(log, "join.retrying", logging.WARNING, error=exc, in_s=delay)
                sleep(delay)
                delay = min(delay * 2, 30.0)
            except ApiError as exc:
                hint = (
                    "; an earlier attempt timed out and may have used the token: create a new one with "
                    "`cloudgw gateway join-token NAME`"
                    if attempted and exc.reason == "used"
                    else ""
                )
                raise JoinRefused(f"join refused: {exc}{hint}") from None
            except InvalidInput as exc:
                raise JoinRefused("join refused: " + "; ".join(str(p) for p in exc.problems)) from None
        private_dir(self.state_dir)
        self.ca_path.write_text(ca)
        _write_private(
            self.state_dir / CREDENTIALS,
            json.dumps({"url": self.url, "gateway": answer.gateway, "credential": answer.credential}),
        )
        self.gateway, self._credential = answer.gateway, answer.credential
        log_event(log, "join.done", gateway=self.gateway, public_key=public_key)
        return str(self.gateway)

    def client(self, timeout: float = 10.0) -> AgentClient:
        if self._credential is None and not self.load():
            raise JoinRefused("not joined")
        return AgentClient(self.url, token=self._credential, ca=str(self.ca_path), timeout=timeout)


class LinkRoles:
    """The controller's side of an HA pair (agent/pair.py): one connection, short timeouts, and any
    failure to get an answer reported as unreachable (the pair then decides alone)."""

    TIMEOUT_S = 1.0

    def __init__(self, link: ControllerLink) -> None:
        self.link = link
        self._client: AgentClient | None = None

    def request_role(self, role: str, epoch: int, reason: str) -> RoleReply:
        try:
            if self._client is None:
                self._client = self.link.client(timeout=self.TIMEOUT_S)
            answer = self._client.request_role(role, epoch, reason)
        except Unreachable as exc:
            self._reset()
            raise PairUnreachable(str(exc)) from None
        except ApiError as exc:
            self._reset()
            if exc.status >= 500 or exc.status == 429:
                raise PairUnreachable(str(exc)) from None
            raise
        return RoleReply(answer.granted, answer.role, answer.active, answer.epoch, answer.reason)

    def _reset(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None


class ControllerSource:
    """A DocumentSource fed by the controller's watch feed, falling back to the saved document."""

    def __init__(
        self, link: ControllerLink, saved: str | Path, on_change: Callable[[], None] = lambda: None, wait: float = 25.0
    ) -> None:
        self.link = link
        self.saved = Path(saved)
        self.on_change = on_change
        self.wait = wait
        self._document: GatewayDocument | None = None
        self._error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False
        # answers the controller's questions about this gateway's side of a path (Agent.answer_path)
        self.on_question: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        data = read_json(self.saved)
        if data is not None:
            try:
                self._document = load_document(data, source=str(self.saved))
                log_event(log, "document.restored", rev=self._document.revision, source=self.saved)
            except InvalidInput as exc:
                log_event(log, "document.saved_invalid", logging.WARNING, problems=len(exc.problems))

    @property
    def error(self) -> str | None:
        return self._error

    def poll(self) -> GatewayDocument | None:
        return self._document

    @property
    def revision(self) -> int:
        return self._document.revision if self._document else -1

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        delay = 0.5
        refused = -1  # the revision of the last document refused
        client = self.link.client(timeout=10)
        while not self._stop.is_set():
            opened, answered = time.monotonic(), False
            try:
                # after a refused document, wait for the next revision rather than fetch it again
                since = max(self.revision, refused)
                for data in client.stream(since, wait=self.wait, questions=self.on_question is not None):
                    if self._stop.is_set():
                        break
                    if not self.connected:
                        log_event(log, "controller.connected", url=self.link.url)
                    self.connected = True
                    if data is None:
                        continue
                    answered, delay = True, 0.5
                    if "questions" in data:
                        for question in data["questions"]:
                            threading.Thread(target=self._answer, args=(question,), name="answer", daemon=True).start()
                        continue
                    try:
                        self._document = load_document(data, source="controller document")
                        self._error = None
                    except InvalidInput as exc:
                        self._error = str(exc)
                        log_event(
                            log, "document.refused", logging.ERROR, problems="; ".join(str(p) for p in exc.problems)
                        )
                        revision = data.get("revision")
                        refused = revision if isinstance(revision, int) and not isinstance(revision, bool) else refused
                        self._stop.wait(delay)  # and never spin, whatever the controller sends
                        delay = min(delay * 2, 10.0)
                        continue
                    self.on_change()
                if not answered and time.monotonic() - opened < 1.0:
                    # closed at once with nothing in it: whatever the controller does, never reconnect
                    # in a spin (a long-poll's "nothing new" after its wait reconnects at once)
                    self._stop.wait(delay)
                    delay = min(delay * 2, 10.0)
            except CloudgwError as exc:
                if self.connected:
                    log_event(log, "controller.lost", logging.WARNING, error=exc)
                self.connected = False
                self._error = f"controller: {exc}"
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
            except Exception as exc:  # a bug must not silently end the watch: the gateway would freeze
                log.exception("watch loop error (retrying): %s", type(exc).__name__)
                self._error = f"internal error: {type(exc).__name__}"
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _answer(self, question: dict[str, Any]) -> None:
        """One question, in its own thread (a probe takes up to a second; the watch goes on)."""
        handler = self.on_question
        if handler is None:  # the agent stopped answering meanwhile: the controller's wait says "unknown"
            return
        try:
            answer = handler(question)
        except Exception as exc:  # the answer says what went wrong; the controller shows it
            answer = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        try:
            with self.link.client(timeout=10) as client:
                client.answer(question["id"], answer)
        except CloudgwError as exc:
            log_event(log, "question.unanswered", logging.DEBUG, error=exc)


class Reporter:
    """Announce learned endpoints (at once when they change) and send heartbeats."""

    def __init__(
        self,
        link: ControllerLink,
        status: Callable[[], dict[str, Any]],
        endpoints: Callable[[], dict[str, list[dict[str, Any]]]],
        interval: float = 10.0,
    ) -> None:
        self.link = link
        self.status = status
        self.endpoints = endpoints
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._announced: dict[str, list[dict[str, Any]]] = {}
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="report", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        client = self.link.client(timeout=10)
        next_heartbeat = 0.0
        while not self._stop.is_set():
            try:
                current = self.endpoints()
                for network in sorted(set(current) | set(self._announced)):
                    items = current.get(network, [])
                    if self._announced.get(network) != items:
                        client.announce(network, items)
                        self._announced[network] = items
                if time.monotonic() >= next_heartbeat:
                    client.heartbeat(self.status())
                    next_heartbeat = time.monotonic() + self.interval
            except InvalidInput as exc:
                log_event(log, "report.refused", logging.WARNING, problems="; ".join(str(p) for p in exc.problems))
                self._stop.wait(5.0)
            except CloudgwError as exc:
                log_event(log, "report.failed", logging.DEBUG, error=exc)
                self._stop.wait(1.0)
            except Exception as exc:  # never end the reporter on a bug: announcements would stop
                log.exception("report loop error (retrying): %s", type(exc).__name__)
                self._stop.wait(5.0)
            self._wake.wait(max(0.0, min(self.interval, next_heartbeat - time.monotonic())))
            self._wake.clear()


__all__ = ["ControllerLink", "ControllerSource", "JoinRefused", "Problem", "Reporter"]
