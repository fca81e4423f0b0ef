"""Wake the gateways' long-polls when the revision moves. Writers run in worker threads; waiters are
coroutines on the event loop, so one waiting gateway costs no thread."""

from __future__ import annotations

import asyncio
import contextlib


class RevisionBus:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self.revision = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def publish(self, revision: int) -> None:
        """Thread-safe: called after a commit."""
        self.revision = max(self.revision, revision)
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake)

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
