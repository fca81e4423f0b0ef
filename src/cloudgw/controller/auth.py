"""Who is calling: every API call carries `Authorization: Bearer <token>`.

Roles: admin (everything), readonly (GET only), join (only POST /agent/join, once, before it
expires), gateway (only its own /agent/* calls: the gateway is taken from the credential, so there is
no way to even name another gateway).

A verified credential is remembered (at most AUTH_CACHE_SECONDS, longer than a gateway's long-poll,
so its next poll is answered from memory) so that a thousand gateways' watch calls do not cost a
thousand database lookups per change. Any write this controller makes or sees (a revocation, a
gateway deleted, a join), except an announcement of endpoints (which cannot change who is who),
forgets every remembered credential at once. A write through another replica is seen within the
app's once-a-second database poll; only a row changed in the database by hand, with no revision
bump, can outlive its revocation, by at most AUTH_CACHE_SECONDS.
Join tokens are never remembered.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from cloudgw.controller.db.models import GatewayRow, TokenRow, utcnow
from cloudgw.controller.state import State
from cloudgw.errors import Unauthorized
from cloudgw.logs import log_event
from cloudgw.model.tokens import parse_token, secret_matches

log = logging.getLogger("cloudgw.controller")


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str  # the token's name: the actor in audit rows
    role: str
    gateway: str | None  # join and gateway credentials


AUTH_CACHE_SECONDS = 30.0


class PrincipalCache:
    """sha256(credential) -> (principal, State.auth_generation when checked, monotonic deadline)."""

    def __init__(self, seconds: float = AUTH_CACHE_SECONDS, size: int = 20_000) -> None:
        self.seconds = seconds
        self.size = size
        self._entries: dict[bytes, tuple[Principal, int, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(credential: str) -> bytes:
        return hashlib.sha256(credential.encode()).digest()

    def get(self, key: bytes, generation: int) -> Principal | None:
        entry = self._entries.get(key)
        if entry is None or entry[1] != generation or entry[2] < time.monotonic():
            return None
        return entry[0]

    def put(self, key: bytes, who: Principal, generation: int, seconds: float | None = None) -> None:
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[key] = (who, generation, time.monotonic() + min(self.seconds, seconds or self.seconds))


async def get_state(request: Request) -> State:
    state: State = request.app.state.cloudgw
    return state


class AuthFailures:
    """Failed credential checks per source address: logged (never the secret; at most one line per
    address every 10 s, with the count), counted in /metrics, and after `per_minute` failures within a
    minute that address gets no new credential check for a minute (429). Credentials already
    remembered keep working, so a gateway behind the same NAT as a guesser is not cut off."""

    def __init__(self, per_minute: int = 30, sources: int = 10_000) -> None:
        self.per_minute = per_minute
        self.sources = sources
        self._window: dict[str, tuple[float, int]] = {}  # source -> (window start, failures in it)
        self._blocked: dict[str, float] = {}  # source -> monotonic time the block ends
        self._logged: dict[str, float] = {}
        self._lock = threading.Lock()

    def blocked_for(self, source: str) -> float:
        until = self._blocked.get(source)
        if until is None:
            return 0.0
        left = until - time.monotonic()
        if left <= 0:
            self._blocked.pop(source, None)
            return 0.0
        return left

    def record(self, source: str, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._window) >= self.sources:  # bounded memory under a many-address flood
                self._window.clear()
                self._logged.clear()
            start, count = self._window.get(source, (now, 0))
            if now - start > 60:
                start, count = now, 0
            count += 1
            self._window[source] = (start, count)
            if count >= self.per_minute:
                self._blocked[source] = now + 60
            last = self._logged.get(source, 0.0)
            if now - last >= 10:
                self._logged[source] = now
                log_event(log, "auth.failed", logging.WARNING, source=source, reason=reason, failures_this_minute=count)


def _source(request: Request) -> str:
    return request.client.host if request.client else "?"


async def principal(request: Request, state: State = Depends(get_state)) -> Principal:
    """Who is calling. A remembered credential is answered on the event loop; only a new one costs
    a worker thread and a database query (1,000 gateways re-polling after every change used to
    queue behind those)."""
    failures: AuthFailures = request.app.state.auth_failures
    metrics = request.app.state.watch_metrics
    header = request.headers.get("authorization", "")
    scheme, _, text = header.partition(" ")
    if scheme.lower() != "bearer" or not text:
        failures.record(_source(request), "missing")
        metrics.auth_failures.labels("missing").inc()
        raise Unauthorized("missing credential: send 'Authorization: Bearer <token>'", reason="missing")
    return await _check(request, state, text)


async def still_valid(request: Request, state: State) -> bool:
    """Whether the request's credential is still good (a long-lived stream asks when credentials
    may have changed): remembered, or checked again like a new one."""
    _, _, text = request.headers.get("authorization", "").partition(" ")
    try:
        await _check(request, state, text)
    except Unauthorized:
        return False
    return True


async def _check(request: Request, state: State, text: str) -> Principal:
    failures: AuthFailures = request.app.state.auth_failures
    metrics = request.app.state.watch_metrics
    cache: PrincipalCache = request.app.state.auth_cache
    key, generation = cache.key(text), state.auth_generation
    remembered = cache.get(key, generation)
    if remembered is not None:
        return remembered
    wait = failures.blocked_for(_source(request))
    if wait > 0:
        metrics.auth_throttled.inc()
        raise Unauthorized(f"too many failed attempts from this address; retry in {wait:.0f} s", status=429)
    try:
        who, lifetime = await run_in_threadpool(_verify, state, text)
    except Unauthorized as exc:
        reason = exc.reason
        failures.record(_source(request), reason)
        metrics.auth_failures.labels(reason).inc()
        raise
    if who.role != "join":
        cache.put(key, who, generation, lifetime)
    return who


def _verify(state: State, text: str) -> tuple[Principal, float | None]:
    parsed = parse_token(text)
    if parsed is None:
        raise Unauthorized("malformed token", reason="malformed")
    lifetime = None
    with state.session() as session:
        row = session.get(TokenRow, parsed.id)
        if row is None or row.revoked or not secret_matches(parsed.secret, row.secret_hash):
            raise Unauthorized("invalid token", reason="invalid")
        expires = row.expires_at
        if expires is not None:
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=utcnow().tzinfo)
            if expires < utcnow():
                raise Unauthorized("token expired", reason="expired")
            lifetime = (expires - utcnow()).total_seconds()
        if row.role == "join" and row.used_at is not None:
            raise Unauthorized("join token already used", reason="used")
        gateway = None
        if row.gateway_id is not None:
            gateway = session.scalar(select(GatewayRow.name).where(GatewayRow.id == row.gateway_id))
            if gateway is None:
                raise Unauthorized("invalid token", reason="invalid")
    return Principal(row.id, row.name, row.role, gateway), lifetime


async def reader(who: Principal = Depends(principal)) -> Principal:
    if who.role not in ("admin", "readonly"):
        raise Unauthorized("this credential may not use the admin API", status=403)
    return who


async def admin(who: Principal = Depends(principal)) -> Principal:
    if who.role != "admin":
        raise Unauthorized("read-only token: changes need an admin token", status=403)
    return who


async def gateway(who: Principal = Depends(principal)) -> Principal:
    if who.role != "gateway" or who.gateway is None:
        raise Unauthorized("only a gateway credential may use this endpoint", status=403)
    return who


async def joiner(who: Principal = Depends(principal)) -> Principal:
    if who.role != "join" or who.gateway is None:
        raise Unauthorized("only a join token may join", status=403)
    return who
