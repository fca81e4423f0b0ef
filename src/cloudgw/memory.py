"""Give freed memory back to the operating system after a burst.

CPython frees objects to glibc's malloc, which keeps the pages for reuse: after 1,000 event streams
or long-polls came and went, the controller's RSS stayed at its high-water mark (103 -> 190 MiB, and
190 after they all closed; measured with three rounds of 1,000, so a high-water mark, not a leak).
`malloc_trim` returns the free pages at the top of the heap and whole free arenas; it costs a few
milliseconds, so it runs at most once a minute and only when RSS rose since the last trim.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from pathlib import Path

_libc: ctypes.CDLL | None = None


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def trim() -> bool:
    """malloc_trim(0) where glibc has it; False elsewhere (musl, other systems)."""
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        if name is None:
            return False
        _libc = ctypes.CDLL(name)
    function = getattr(_libc, "malloc_trim", None)
    if function is None:
        return False
    function(0)
    return True


class Trimmer:
    """Trim when RSS grew by `threshold_kib` since the last trim (the caller decides how often to ask)."""

    def __init__(self, threshold_kib: int = 16 * 1024) -> None:
        self.threshold_kib = threshold_kib
        self.after_last = rss_kib()

    def maybe_trim(self) -> bool:
        now = rss_kib()
        if now - self.after_last < self.threshold_kib:
            self.after_last = min(self.after_last, now)
            return False
        trimmed = trim()
        self.after_last = rss_kib()
        return trimmed


# Python's cycle collector runs a young-generation pass every 700 net allocations, and a pass walks
# every young container, however big: a 100,000-entry dict copied by a write is one object whose
# traversal touches all of its entries. At 1,000 gateways and 100,000 endpoints that made garbage
# collection 41% of the controller's announcement time and half of a hub's announce write (in process:
# 15.0 s -> 8.3 s for 1,000 announcements, 50 -> 20 ms for one; docs/benchmarks.md). Objects are
# freed by reference counting as before; only cycles wait longer (at most ~50,000 allocations).
GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    """The collector's thresholds for the long-running processes (controller, agent)."""
    gc.set_threshold(*GC_THRESHOLDS)
