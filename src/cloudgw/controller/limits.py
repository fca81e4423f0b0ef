"""Limits in front of the application: what an anonymous client can make the controller spend.

Design notes
- Connections (a uvicorn protocol subclass): at most `max_connections` open at once and
  `max_connections_per_source` from one address; one over the limit is answered `503` with a JSON
  body that says which limit, and closed. A connection must complete each request's headers within
  `header_timeout` seconds of opening (or of its previous response): a client that trickles a header
  byte by byte is closed, not kept forever. Idle keep-alive connections are closed by uvicorn after
  `timeout_keep_alive`. Gateways' long-polls are requests in progress, never idle.
- Requests (an ASGI middleware, before routing and before any body is read): a body over the limit
  of its path is refused with `413` (by Content-Length at once, or while streaming); a write with no
  `Authorization: Bearer` header is refused with `401` before its body is read; NUL in the path or
  the query is `400` (PostgreSQL refuses NUL in text; it must never reach the database).
- Descriptors: the soft RLIMIT_NOFILE is raised to the hard limit at start and the connection cap
  kept below it, so accept() never fails with EMFILE; asyncio's accept errors are logged at most once
  a minute instead of a traceback per attempt.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from cloudgw.logs import log_event

log = logging.getLogger("cloudgw.controller")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_BODY_LIMIT = 1 << 20  # 1 MiB: every admin and gateway request but the two below
LARGE_BODY_PATHS = {
    "/api/v1/agent/endpoints": 16 << 20,  # up to 100,000 endpoints in one announcement
    "/api/v1/topology": 16 << 20,  # a whole topology file
}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}  # every write needs a credential (the join too: its token)


def body_limit(path: str) -> int:
    return LARGE_BODY_PATHS.get(path.rstrip("/"), DEFAULT_BODY_LIMIT)


class BodyTooLarge(Exception):
    pass


async def _json(send: Send, status: int, error: str, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
    body = json.dumps({"error": error, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """ASGI middleware: body size, anonymous writes and NUL characters, before the app runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        query: bytes = scope.get("query_string", b"")
        if "\x00" in path or b"\x00" in query or b"%00" in query:
            await _json(send, 400, "invalid", "the path or query contains a NUL character")
            return
        headers = {key.lower(): value for key, value in scope["headers"]}
        limit = body_limit(path)
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _json(send, 400, "invalid", "Content-Length is not a number")
                return
            if declared > limit:
                await _json(send, 413, "too large", f"the body may be at most {limit} bytes on {path}")
                return
        if scope["method"] in WRITES and not headers.get(b"authorization", b"").lower().startswith(b"bearer "):
            await _json(
                send,
                401,
                "unauthorized",
                "missing credential: send 'Authorization: Bearer <token>'",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await _json(send, 413, "too large", f"the body may be at most {limit} bytes on {path}")


@dataclass
class ConnectionLimits:
    """Open connections, in total and per source address (one event loop: no locking needed)."""

    total: int = 4096
    per_source: int = 256
    header_timeout: float = 10.0
    open_total: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    timed_out: int = 0
    _last_log: float = 0.0

    def admit(self, source: str) -> str | None:
        """None if the connection may stay, else the reason it is refused."""
        if self.open_total >= self.total:
            reason = f"the controller has {self.total} connections open, its limit"
        elif self.by_source.get(source, 0) >= self.per_source:
            reason = f"{self.per_source} connections are open from {source}, the limit per address"
        else:
            self.open_total += 1
            self.by_source[source] = self.by_source.get(source, 0) + 1
            return None
        self.refused += 1
        self._log_rarely("connection.refused", source=source, reason=reason, refused=self.refused)
        return reason

    def release(self, source: str) -> None:
        self.open_total -= 1
        left = self.by_source.get(source, 1) - 1
        if left > 0:
            self.by_source[source] = left
        else:
            self.by_source.pop(source, None)

    def _log_rarely(self, event: str, **fields: Any) -> None:
        now = time.monotonic()
        if now - self._last_log >= 10.0:  # a flood must not flood the log
            self._last_log = now
            log_event(log, event, logging.WARNING, **fields)


COALESCE_MAX = 64 << 10  # bytes: a larger write goes out on its own (joining would copy it)


class CoalescingTransport:
    """uvicorn writes a response's status line and headers, then its body, each a TLS record and a
    send() of its own (at 1,000 gateways, the sends were a fifth of the controller's time during a
    change). A response's start is held until the next write, which leaves with it at once (the
    body, right after the headers), or until the loop's next turn if none comes; any other write
    (a streamed line) leaves at once. Holding every write of a turn instead delayed each response
    until the loop had answered every gateway a change woke.
    Everything else is the wrapped transport's; what would write or close flushes first."""

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._pending:
            if len(data) > COALESCE_MAX:  # a large body (a hub's document) is not copied to join it
                self._flush()
                self._transport.write(data)
                return
            self._pending.append(bytes(data))
            self._flush()
            return
        if not data.startswith(b"HTTP/"):
            # not a response's start: nothing comes to join it. A streamed watch's document held
            # to the loop's next turn left only after every stream the change woke had been served
            if not self._transport.is_closing():
                self._transport.write(data)
            return
        self._pending.append(bytes(data))
        self._loop.call_soon(self._flush)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def get_write_buffer_size(self) -> int:
        return int(self._transport.get_write_buffer_size()) + sum(len(d) for d in self._pending)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the connection limits and the header deadline."""

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(CoalescingTransport(transport, self.loop))
            self._source = self.client[0] if self.client else "?"
            self._deadline: Any = None
            self._admitted = False
            reason = limits.admit(self._source)
            if reason is not None:
                body = json.dumps({"error": "unavailable", "message": f"too many connections: {reason}"}).encode()
                transport.write(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
                    + b"content-length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
                transport.close()
                return
            self._admitted = True
            self._arm()

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            armed_for = self.cycle
            self._deadline = self.loop.call_later(limits.header_timeout, self._header_deadline, armed_for)

        def _header_deadline(self, armed_for: Any) -> None:
            if self.cycle is armed_for and not self.transport.is_closing():  # no new request began in time
                limits.timed_out += 1
                limits._log_rarely("connection.header_timeout", source=self._source, timed_out=limits.timed_out)
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if getattr(self, "_deadline", None) is not None:
                self._deadline.cancel()
            if getattr(self, "_admitted", False):
                self._admitted = False
                limits.release(self._source)
            super().connection_lost(exc)

    return GuardedH11Protocol


def raise_descriptor_limit(wanted_connections: int) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the connection cap that fits under it
    (a reserve is kept for the database, logs and wireguard of nothing: the controller's own files)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return max(16, min(wanted_connections, soft - 128))


class AcceptErrorFilter(logging.Filter):
    """asyncio logs a traceback for every failed accept() (EMFILE at the descriptor limit): at most
    one such line a minute passes."""

    def __init__(self) -> None:
        super().__init__()
        self._last = 0.0
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "accept" not in record.getMessage().lower():
            return True
        now = time.monotonic()
        if now - self._last >= 60.0:
            self._last = now
            record.exc_info = None
            record.msg = f"{record.getMessage()} ({self.suppressed} similar suppressed)"
            record.args = None
            self.suppressed = 0
            return True
        self.suppressed += 1
        return False
