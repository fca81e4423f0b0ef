"""Entry point: `cloudgw NOUN VERB ...`."""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from cloudgw import __version__
from cloudgw.cli import burst, clouds, config_commands, explain, nat, operate
from cloudgw.cli.common import admin_command

# Command groups that run on a gateway or a lab host, with heavy imports (pyroute2, the agent, the lab,
# the controller): loaded only when one of their commands runs, so `cloudgw site list` on an admin's
# laptop imports none of it. name -> (module, one-line help for the command list)
LAZY = {
    "agent": ("cloudgw.cli.agent", "Run and manage the gateway agent (on the gateway machine, as root)."),
    "controller": ("cloudgw.cli.controller", "Run and initialise the controller (API, watch feed, dashboard)."),
    "lab": ("cloudgw.cli.lab", "Build and explore lab scenarios made of network namespaces (needs root)."),
}


class LazyGroup(TyperGroup):
    """The root command: the groups in LAZY are imported on first use; listing them in --help needs
    only their one-line help."""

    _listing = False

    # (typer vendors its own click: the base install has no `click` package, so none is named here)
    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY})

    def get_command(self, ctx: Any, name: str) -> Any:
        if name not in LAZY:
            return super().get_command(ctx, name)
        module, summary = LAZY[name]
        if self._listing:
            return TyperGroup(name=name, help=summary)
        command = typer.main.get_command(importlib.import_module(module).app)
        command.name = name
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    cls=LazyGroup,
    name="cloudgw",
    help="cloudgw: stretch one IP subnet across clouds and sites through encrypted gateways.\n\n"
    "Admin commands talk to the controller's REST API; they find it through --url/--token/--ca, "
    "CLOUDGW_URL/CLOUDGW_TOKEN/CLOUDGW_CA, ~/.config/cloudgw/config.yaml, or the lab running here.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for sub, name in (
    (config_commands.site, "site"),
    (config_commands.network, "network"),
    (config_commands.pool, "pool"),
    (config_commands.gateway, "gateway"),
    (config_commands.connection, "connection"),
    (operate.endpoint, "endpoint"),
    (nat.app, "nat"),
    (operate.token, "token"),
    (operate.config, "config"),
    (burst.app, "burst"),
):
    app.add_typer(sub, name=name)
app.command("status")(admin_command(operate.status))
app.command("apply")(admin_command(operate.apply))
app.command("export")(admin_command(operate.export))
app.command("audit")(admin_command(operate.audit))
app.command("preflight")(admin_command(clouds.preflight))
app.command("explain")(admin_command(explain.explain))


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
