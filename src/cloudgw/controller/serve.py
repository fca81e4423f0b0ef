"""Run the controller under uvicorn: TLS by default; plain HTTP only on loopback or with --insecure.
Listening sockets can be handed in by file descriptor (a supervisor, or systemd socket activation),
so one controller can listen in two network namespaces at once."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import ipaddress
import logging
import socket
from pathlib import Path
from typing import Any

import uvicorn

from cloudgw.controller.app import create_app
from cloudgw.controller.limits import AcceptErrorFilter, ConnectionLimits, guarded_protocol, raise_descriptor_limit
from cloudgw.controller.settings import ControllerSettings
from cloudgw.controller.tls import SERVER_CERT, SERVER_KEY
from cloudgw.errors import InvalidInput, Problem
from cloudgw.logs import log_event
from cloudgw.memory import tune_gc
from cloudgw.model.addr import parse_host_port

log = logging.getLogger("cloudgw.controller")
TLS_READ_BUFFER = 32 * 1024


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_files(settings: ControllerSettings) -> tuple[str, str] | None:
    if settings.tls_cert or settings.tls_key:
        if not (settings.tls_cert and settings.tls_key):
            raise InvalidInput(
                [Problem("tls_key" if settings.tls_cert else "tls_cert", "give both --tls-cert and --tls-key")],
                what="controller settings",
            )
        return settings.tls_cert, settings.tls_key
    cert, key = Path(settings.data_dir) / SERVER_CERT, Path(settings.data_dir) / SERVER_KEY
    if cert.exists() and key.exists():
        return str(cert), str(key)
    return None


def bound_sockets(settings: ControllerSettings, fds: list[int]) -> list[socket.socket]:
    if fds:
        return [socket.socket(fileno=fd) for fd in fds]
    host, port = parse_host_port(settings.listen)
    # proto must say TCP: asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and
    # without it every small response waited ~40 ms for a delayed ACK (Nagle), found by bench/scale.py
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return [sock]


def serve(settings: ControllerSettings, fds: list[int] | None = None) -> None:
    tls = tls_files(settings)
    sockets = bound_sockets(settings, fds or [])
    if tls is None and not settings.insecure:
        exposed = [s.getsockname()[0] for s in sockets if not _is_loopback(s.getsockname()[0])]
        if exposed:
            for sock in sockets:
                sock.close()
            raise InvalidInput(
                [
                    Problem(
                        "listen",
                        f"plain HTTP on {exposed[0]} would send tokens in clear text",
                        "run `cloudgw controller init` (creates a CA and certificate), pass "
                        "--tls-cert/--tls-key, listen on 127.0.0.1, or add --insecure",
                    )
                ],
                what="controller settings",
            )
    tune_gc()
    server = build_server(settings, tls)
    addresses = ", ".join(f"{'https' if tls else 'http'}://{s.getsockname()[0]}:{s.getsockname()[1]}" for s in sockets)
    log_event(log, "controller.serving", addresses=addresses, db=settings.db.split("@")[-1])
    asyncio.run(serve_with_handshake_deadline(server, sockets, settings.header_timeout))


async def serve_with_handshake_deadline(server: uvicorn.Server, sockets: list[socket.socket], deadline: float) -> None:
    """uvicorn has no TLS handshake timeout of its own (asyncio's default is 60 s): a connection that
    never sends its ClientHello would hold a descriptor and memory for a minute, before any of our
    per-address limits (they apply once the handshake is done) can see it. The loop's create_server
    is given the header deadline as handshake timeout."""
    loop = asyncio.get_running_loop()
    create_server = loop.create_server
    # asyncio gives every TLS connection a 256 KiB read buffer (SSLProtocol.max_size): 1,000 idle
    # connections cost ~290 MiB. A TLS record is at most 16 KiB, so 32 KiB loses nothing.
    asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER

    async def with_deadline(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("ssl") is not None:
            kwargs.setdefault("ssl_handshake_timeout", deadline)
            # no TLS 1.3 session tickets: OpenSSL makes and sends two after every handshake, and
            # no client of the controller resumes a session (agents and the CLI open new ones)
            kwargs["ssl"].num_tickets = 0
        return await create_server(*args, **kwargs)

    loop.create_server = with_deadline  # type: ignore[method-assign]
    await server.serve(sockets=sockets)


def build_server(settings: ControllerSettings, tls: tuple[str, str] | None) -> uvicorn.Server:
    app = create_app(settings)
    limits = ConnectionLimits(
        total=raise_descriptor_limit(settings.max_connections),
        per_source=settings.max_connections_per_source,
        header_timeout=settings.header_timeout,
    )
    app.state.connection_limits = limits
    logging.getLogger("asyncio").addFilter(AcceptErrorFilter())
    config = uvicorn.Config(
        app,
        http=guarded_protocol(limits),
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
        log_level=settings.log_level.lower(),
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        timeout_keep_alive=int(settings.keep_alive) or 1,
    )
    return uvicorn.Server(config)
