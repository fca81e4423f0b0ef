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
import threading
import time
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from cloudgw.controller.db.models import GatewayRow, TokenRow, utcnow
from cloudgw.controller.state import State
from cloudgw.errors import Unauthorized
from cloudgw.model.tokens import parse_token, secret_matches


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


async def principal(request: Request, state: State = Depends(get_state)) -> Principal:
    """Who is calling. A remembered credential is answered on the event loop; only a new one costs
    a worker thread and a database query (1,000 gateways re-polling after every change used to
    queue behind those)."""
    header = request.headers.get("authorization", "")
    scheme, _, text = header.partition(" ")
    if scheme.lower() != "bearer" or not text:
        raise Unauthorized("missing credential: send 'Authorization: Bearer <token>'")
    cache: PrincipalCache = request.app.state.auth_cache
    key, generation = cache.key(text), state.auth_generation
    remembered = cache.get(key, generation)
    if remembered is not None:
        return remembered
    who, lifetime = await run_in_threadpool(_verify, state, text)
    if who.role != "join":
        cache.put(key, who, generation, lifetime)
    return who


def _verify(state: State, text: str) -> tuple[Principal, float | None]:
    parsed = parse_token(text)
    if parsed is None:
        raise Unauthorized("malformed token")
    lifetime = None
    with state.session() as session:
        row = session.get(TokenRow, parsed.id)
        if row is None or row.revoked or not secret_matches(parsed.secret, row.secret_hash):
            raise Unauthorized("invalid token")
        expires = row.expires_at
        if expires is not None:
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=utcnow().tzinfo)
            if expires < utcnow():
                raise Unauthorized("token expired")
            lifetime = (expires - utcnow()).total_seconds()
        if row.role == "join" and row.used_at is not None:
            raise Unauthorized("join token already used")
        gateway = None
        if row.gateway_id is not None:
            gateway = session.scalar(select(GatewayRow.name).where(GatewayRow.id == row.gateway_id))
            if gateway is None:
                raise Unauthorized("invalid token")
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
