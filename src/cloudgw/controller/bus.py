"""Wake the gateways' long-polls when the revision moves. Writers run in worker threads; waiters are
coroutines on the event loop, so one waiting gateway costs no thread."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict

KEEP_PUBLISHED = 256  # revisions whose publish time is remembered (for the delivery histogram)


class RevisionBus:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self.revision = 0
        self._published: OrderedDict[int, float] = OrderedDict()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def publish(self, revision: int) -> None:
        """Thread-safe: called after a commit."""
        self.revision = max(self.revision, revision)
        self._published[revision] = time.monotonic()
        while len(self._published) > KEEP_PUBLISHED:
            self._published.popitem(last=False)
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake)

    def nudge(self) -> None:
        """Thread-safe: wake every waiter without a new revision (a question for a gateway)."""
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake)

    def published_at(self, revision: int) -> float | None:
        """When `revision` was published in this process (monotonic clock), if it was recently."""
        return self._published.get(revision)

    def _wake(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        """Return at the next publish, or after timeout seconds."""
        if self._event is None:
            self.bind(asyncio.get_running_loop())
        event = self._event
        assert event is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
