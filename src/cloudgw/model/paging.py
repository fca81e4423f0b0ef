"""Pages of a list (pure): opaque cursors and the page of a sorted sequence after one.

A cursor is the sort key of the last row a client saw, tagged with the list it belongs to, in
base64url JSON. It is a position, not an offset: rows added or removed before it do not shift the
next page, and any filter can follow it (the key orders every filtered subset the same way). It
is untrusted input like any other query parameter: a cursor that does not decode, belongs to
another list or has the wrong shape is refused and named, never half-used.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from cloudgw.errors import InvalidInput, Problem

MAX_LIMIT = 1000  # the most rows one page may hold
MAX_CURSOR = 512  # characters: a cursor holds one sort key

Key = tuple[str | int, ...]
T = TypeVar("T")


def encode_cursor(kind: str, key: Key) -> str:
    text = json.dumps([kind, *key], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _refused(message: str) -> InvalidInput:
    return InvalidInput(
        [Problem("cursor", message, "pass the next_cursor of the previous page of this list, or leave it out")],
        what="query",
    )


def decode_cursor(kind: str, cursor: str, shape: tuple[type, ...]) -> Key:
    """The sort key in a cursor of list `kind`, whose parts have these types (str or int)."""
    if len(cursor) > MAX_CURSOR:
        raise _refused(f"longer than {MAX_CURSOR} characters")
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _refused("not a cursor") from None
    if not isinstance(parts, list) or not parts or parts[0] != kind:
        raise _refused(f"not a cursor of the {kind} list")
    key: list[str | int] = []
    for part, expected in zip(parts[1:], shape, strict=False):
        text = isinstance(part, str) and expected is str and len(part) <= 200
        number = type(part) is int and expected is int  # not a bool, which is an int too
        if not (text or number):
            raise _refused("malformed")
        key.append(part)
    if len(parts) - 1 != len(shape):
        raise _refused("malformed")
    return tuple(key)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int  # rows that match the filters, on every page
    next_key: Key | None  # the key of the last row, when more rows follow


def page_of(rows: Sequence[T], key: Callable[[T], Key], after: Key | None, limit: int | None) -> Page[T]:
    """The rows after `after` (rows sorted by `key`), at most `limit` of them (None: all)."""
    start = 0 if after is None else bisect.bisect_right(rows, after, key=key)
    end = len(rows) if limit is None else min(len(rows), start + limit)
    items = list(rows[start:end])
    more = end < len(rows)
    return Page(items, len(rows), key(items[-1]) if more and items else None)
