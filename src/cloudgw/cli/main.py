"""Entry point: `cloudgw NOUN VERB ...`."""

from __future__ import annotations

import typer

from cloudgw import __version__
from cloudgw.cli import agent, controller, lab

app = typer.Typer(
    name="cloudgw",
    help="cloudgw: stretch one IP subnet across clouds and sites through encrypted gateways.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(agent.app, name="agent")
app.add_typer(lab.app, name="lab")
app.add_typer(controller.app, name="controller")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cloudgw {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit"
    ),
) -> None:
    """cloudgw: stretch one IP subnet across clouds and sites through encrypted gateways."""


def main() -> None:
    app()
