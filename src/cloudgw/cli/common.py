"""What every command shares: error reporting and exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from cloudgw import exitcodes
from cloudgw.errors import CloudgwError, InvalidInput

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = exitcodes.FAILED) -> None:
    # escaped: a message may hold brackets ("cloudgw[controller]", "[::1]") that rich would eat as markup
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Turn project exceptions into one clear message and a named exit code (no traceback)."""
    return _handler(fn, admin=False)


def admin_command(fn: F) -> F:
    """For commands that talk to the controller: 0 ok, 1 refused or failed, 2 usage error."""
    return _handler(fn, admin=True)


def _handler(fn: F, admin: bool) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InvalidInput as exc:
            err_console.print(f"[red]error:[/red] {exc.what} refused:", highlight=False)
            for problem in exc.problems:
                err_console.print(f"  - {problem}", highlight=False, soft_wrap=True)
            raise typer.Exit(exitcodes.FAILED if admin else exc.exit_code) from None
        except CloudgwError as exc:
            code = exc.exit_code
            if admin and code not in (exitcodes.USAGE,):
                code = exitcodes.FAILED
            fail(str(exc), code)
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def need_root(what: str) -> None:
    import os

    if os.geteuid() != 0:
        fail(f"{what} needs root (network namespaces, netlink, nftables); run it with sudo", exitcodes.USAGE)
