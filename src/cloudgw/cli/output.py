"""Tables for people, JSON and YAML for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import typer
import yaml
from rich.table import Table

from cloudgw import exitcodes
from cloudgw.cli.common import console, err_console

FORMATS = ("table", "json", "yaml")
Column = tuple[str, Callable[[dict[str, Any]], Any]]


def check_format(value: str) -> str:
    if value not in FORMATS:
        raise typer.BadParameter(f"'{value}' is not one of: {', '.join(FORMATS)}")
    return value


OutputOpt = typer.Option("--output", "-o", help="table, json or yaml", callback=check_format)


def emit(data: Any, fmt: str, columns: Sequence[Column] | None = None, title: str | None = None) -> None:
    if fmt == "json":
        print(json.dumps(data, indent=1, default=str))
        return
    if fmt == "yaml":
        print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), end="")
        return
    if columns is None:
        for key, value in data.items() if isinstance(data, dict) else enumerate(data):
            console.print(f"[bold]{key}[/bold]: {value}", highlight=False, soft_wrap=True)
        return
    rows = data if isinstance(data, list) else [data]
    cells = [[cell(getter(row)) for _, getter in columns] for row in rows]
    # a column that is empty in every row only costs width
    shown = [i for i in range(len(columns)) if not rows or any(line[i] != "-" for line in cells)]
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for index in shown:
        table.add_column(columns[index][0], overflow="fold")
    for line in cells:
        table.add_row(*(line[i] for i in shown))
    console.print(table)
    if not rows:
        err_console.print("(none)")


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def confirm(question: str, yes: bool) -> None:
    """Ask before destroying something; --yes skips; without a terminal, refuse instead of hanging."""
    if yes:
        return
    import sys

    if not sys.stdin.isatty():
        err_console.print(f"[red]error:[/red] {question} Refusing without confirmation: pass --yes")
        raise typer.Exit(exitcodes.USAGE)
    if not typer.confirm(question, default=False):
        err_console.print("aborted")
        raise typer.Exit(exitcodes.FAILED)


def human_bytes(value: Any) -> str:
    if value in (None, ""):
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)
