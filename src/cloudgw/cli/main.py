"""Entry point: `cloudgw NOUN VERB ...`."""

from __future__ import annotations

from typing import Annotated

import typer

from cloudgw import __version__
from cloudgw.cli import agent, controller, lab, nat, operate, resources
from cloudgw.cli.common import admin_command

app = typer.Typer(
    name="cloudgw",
    help="cloudgw: stretch one IP subnet across clouds and sites through encrypted gateways.\n\n"
    "Admin commands talk to the controller's REST API; they find it through --url/--token/--ca, "
    "CLOUDGW_URL/CLOUDGW_TOKEN/CLOUDGW_CA, ~/.config/cloudgw/config.yaml, or the lab running here.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for sub, name in (
    (resources.site, "site"),
    (resources.network, "network"),
    (resources.pool, "pool"),
    (resources.gateway, "gateway"),
    (resources.connection, "connection"),
    (operate.endpoint, "endpoint"),
    (nat.app, "nat"),
    (operate.token, "token"),
    (operate.config, "config"),
    (agent.app, "agent"),
    (controller.app, "controller"),
    (lab.app, "lab"),
):
    app.add_typer(sub, name=name)
app.command("status")(admin_command(operate.status))
app.command("apply")(admin_command(operate.apply))
app.command("export")(admin_command(operate.export))
app.command("audit")(admin_command(operate.audit))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cloudgw {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option("--url", help="Controller URL [env CLOUDGW_URL]")] = None,
    token: Annotated[str | None, typer.Option("--token", help="API token [env CLOUDGW_TOKEN]")] = None,
    ca: Annotated[str | None, typer.Option("--ca", help="CA certificate of the controller [env CLOUDGW_CA]")] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit")
    ] = False,
) -> None:
    """cloudgw: stretch one IP subnet across clouds and sites through encrypted gateways."""
    ctx.obj = {"url": url, "token": token, "ca": ca}


def main() -> None:
    app()
