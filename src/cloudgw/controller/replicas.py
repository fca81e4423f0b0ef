"""Replicas on one PostgreSQL database hear of each other's commits at once (LISTEN/NOTIFY).

Every write's revision bump also sends NOTIFY on REVISION_CHANNEL with the new revision (state.py,
in the same statement, so no extra round trip; delivered at commit, never for a rolled-back write).
Each replica keeps one connection LISTENing and wakes its follower (app.py) when a revision beyond
its own arrives: a change made through another replica reaches this one's watching gateways in
milliseconds instead of at the next once-a-second poll. The poll stays as the safety net: while the
listening connection is down (a database restart, a pooler that does not pass notifications), the
follower still reads the revision every `replica_poll` seconds. SQLite has no second replica."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import Engine

from cloudgw.logs import log_event

log = logging.getLogger("cloudgw.controller")
REVISION_CHANNEL = "cloudgw_revision"
LISTEN_RETRY_S = 5.0  # after the listening connection failed, try again this much later


def listen_url(engine: Engine) -> str | None:
    """A libpq URL for the listening connection, or None when the database cannot notify."""
    if engine.dialect.name != "postgresql":
        return None
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def newer(payload: str, known: int) -> bool:
    """A notification's payload is a revision; anything else (someone else's NOTIFY on the
    channel) is treated as news, the follower's read then finds out."""
    return not payload.isdigit() or len(payload) > 19 or int(payload) > known


async def listen(url: str, wake: asyncio.Event, known: Callable[[], int]) -> None:
    """Set `wake` whenever another replica commits (runs until cancelled; reconnects)."""
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute(f"LISTEN {REVISION_CHANNEL}")
                wake.set()  # whatever was committed while nobody listened
                async for note in conn.notifies():
                    if newer(note.payload, known()):
                        wake.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the poll covers the gap; never log the URL (it may hold a password)
            log_event(log, "controller.listen_failed", logging.WARNING, error=type(exc).__name__)
        await asyncio.sleep(LISTEN_RETRY_S)
