"""Lists a page at a time: the first page by default with a hint for the next, or `--all`, which
streams every page as it arrives (tables page by page, JSON as one array written item by item),
so memory stays flat however long the list is."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from cloudgw.cli.common import console, err_console
from cloudgw.cli.output import Column, cell, emit

DEFAULT_LIMIT = 50

Limit = Annotated[
    int | None, typer.Option("--limit", min=1, max=1000, help="Rows per page, 1-1000 [default: 50; with --all 1000]")
]
Cursor = Annotated[
    str | None, typer.Option("--cursor", help="Start after the row this cursor names (the hint under a page prints it)")
]
Every = Annotated[bool, typer.Option("--all", help="Every page, streamed as it arrives (memory stays flat)")]
Search = Annotated[str | None, typer.Option("--search", "-q", help="Part of the name (any case), found by the server")]


@dataclass(frozen=True)
class Paging:
    limit: int | None = None  # None: 50 for one page, 1,000 a page with --all
    cursor: str | None = None
    every: bool = False


class _Writer:
    """Prints rows as pages arrive, in one of the output formats."""

    def __init__(self, output: str, columns: Sequence[Column], head: str = "[", out: Any = None) -> None:
        self.output, self.columns, self.pages, self.count = output, columns, 0, 0
        self.out = out or sys.stdout
        if output == "json":
            self.out.write(head + "\n")

    def add(self, items: list[dict[str, Any]], last: bool) -> None:
        if self.output == "json":
            for item in items:
                self.out.write((",\n" if self.count else "") + json.dumps(item, default=str))
                self.count += 1
        elif self.output == "yaml":
            if items:  # consecutive YAML sequences read back as one
                self.out.write(yaml.safe_dump(items, sort_keys=False, default_flow_style=False))
        elif self.pages == 0 and last:
            emit(items, "table", self.columns)  # one page: the usual table
        else:
            # several pages: every column on every page, so they line up, a header on the first
            table = Table(show_edge=False, pad_edge=False, show_header=self.pages == 0)
            for name, _ in self.columns:
                table.add_column(name, overflow="fold")
            for item in items:
                table.add_row(*(cell(getter(item)) for _, getter in self.columns))
            console.print(table)
        self.pages += 1
        self.out.flush()

    def close(self, tail: str = "]") -> None:
        if self.output == "json":
            self.out.write(("\n" if self.count else "") + tail + "\n")
            self.out.flush()


def show_pages(
    client: Any,
    path: str,
    params: dict[str, Any],
    output: str,
    columns: Sequence[Column],
    paging: Paging,
    noun: str,
    json_head: str = "[",
    json_tail: Callable[[dict[str, Any]], str] = lambda _page: "]",
) -> dict[str, Any] | None:
    """Print a list (the page at `paging.cursor`, or every page from there); returns the last page."""
    writer = _Writer(output, columns, json_head)
    size = paging.limit or (1000 if paging.every else DEFAULT_LIMIT)
    pages = client.pages(path, params, limit=size, cursor=paging.cursor)
    last: dict[str, Any] | None = None
    for page in pages:
        done = paging.every is False or not page.get("next_cursor")
        writer.add(page["items"], last=done and last is None)
        last = page
        if not paging.every:
            break
    writer.close(json_tail(last or {}))
    if last is not None and not paging.every and last.get("next_cursor"):
        shown, total = len(last["items"]), last["total"]
        err_console.print(
            f"{shown} of {total:,} {noun} shown; next page: --cursor {last['next_cursor']}  (every page: --all)",
            highlight=False,
            soft_wrap=True,
        )
    return last
