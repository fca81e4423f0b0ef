"""The paging parameters every list takes (?limit, ?cursor), read once for all of them."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Query, Request

from cloudgw.model.paging import MAX_CURSOR, MAX_LIMIT, Key, decode_cursor, encode_cursor


@dataclass(frozen=True)
class PageParams:
    limit: int | None  # None: the whole list
    cursor: str | None

    def after(self, kind: str, shape: tuple[type, ...]) -> Key | None:
        return decode_cursor(kind, self.cursor, shape) if self.cursor else None


def page_params(
    request: Request,
    limit: int | None = Query(
        None, ge=1, le=MAX_LIMIT, description="rows in this page (default: the controller's page_size; 0 there: all)"
    ),
    cursor: str | None = Query(
        None, max_length=MAX_CURSOR, description="the next_cursor of the previous page; leave out for the first"
    ),
) -> PageParams:
    default = int(request.app.state.settings.page_size)
    return PageParams(limit if limit is not None else (default or None), cursor)


def next_cursor(kind: str, key: Key | None) -> str | None:
    return encode_cursor(kind, key) if key is not None else None
