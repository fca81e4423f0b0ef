"""Real controllers for tests: the production app, served by uvicorn over TLS on 127.0.0.1, in a
thread of the test process (one import, fast start)."""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from cloudgw.client import AgentClient, Client
from cloudgw.controller.bootstrap import initialise
from cloudgw.controller.serve import build_server, serve_with_handshake_deadline, tls_files
from cloudgw.controller.settings import ControllerSettings
from tests.helpers import wait_for


@dataclass
class RunningController:
    url: str
    admin_token: str
    ca: str
    ca_fingerprint: str
    settings: ControllerSettings
    server: object
    thread: threading.Thread

    def client(self, token: str | None = None) -> Client:
        return Client(self.url, token=self.admin_token if token is None else token, ca=self.ca)

    def agent(self, token: str) -> AgentClient:
        return AgentClient(self.url, token=token, ca=self.ca)

    def stop(self) -> None:
        self.server.should_exit = True  # type: ignore[attr-defined]
        self.thread.join(timeout=10)


def start_controller(
    data_dir: Path, db: str, offline_after: float = 30.0, admin_token: str | None = None, **settings_: object
) -> RunningController:
    """A controller; `admin_token` for a replica of one whose database already has an admin. The
    shared test controllers see thousands of deliberate authentication failures from 127.0.0.1, so
    their per-address throttle is off unless a test asks for it."""
    values: dict[str, object] = {"auth_failures_per_minute": 1_000_000, **settings_}
    settings = ControllerSettings(
        db=db,
        data_dir=str(data_dir),
        offline_after=offline_after,
        log_level="warning",
        **values,  # type: ignore[arg-type]
    )
    boot = initialise(settings)
    token = boot.admin_token or admin_token
    assert token is not None
    server = build_server(settings, tls_files(settings))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY, as serve.py
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(
        target=lambda: asyncio.run(serve_with_handshake_deadline(server, [sock], settings.header_timeout)), daemon=True
    )
    thread.start()
    wait_for(lambda: server.started, 20, what="the controller to start")
    return RunningController(
        f"https://127.0.0.1:{port}",
        token,
        str(data_dir / "ca.pem"),
        boot.ca_fingerprint,
        settings,
        server,
        thread,
    )
