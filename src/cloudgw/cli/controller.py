"""`cloudgw controller ...`: set up and run the controller."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from cloudgw import exitcodes, logs
from cloudgw.cli.common import console, fail, handle_errors
from cloudgw.controller.settings import ControllerSettings

app = typer.Typer(
    help="Set up and run the controller (API, mapping service, watch feed, dashboard).", no_args_is_help=True
)

DbOpt = Annotated[
    str | None, typer.Option("--db", help="Database URL [env CLOUDGW_DB; default: SQLite in the data dir]")
]
DataOpt = Annotated[
    str | None, typer.Option("--data-dir", help="CA, certificate, SQLite file [default: /var/lib/cloudgw/controller]")
]


def _need_controller_packages() -> None:
    """The controller's web and database stack is an extra: say how to get it, no traceback."""
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "sqlalchemy", "alembic") if importlib.util.find_spec(m) is None]
    if missing:
        fail(
            f"the controller is not installed here (missing {', '.join(missing)}): "
            "pip install 'cloudgw[controller]' (a gateway needs only the base install)",
            exitcodes.FAILED,
        )


def _settings(**overrides: object) -> ControllerSettings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if "data_dir" in values and "db" not in values and not os.environ.get("CLOUDGW_DB"):
        values["db"] = f"sqlite:///{Path(str(values['data_dir'])).resolve()}/controller.db"
    return ControllerSettings(**values)  # type: ignore[arg-type]


@app.command()
@handle_errors
def init(
    db: DbOpt = None,
    data_dir: DataOpt = None,
    san: Annotated[
        list[str] | None,
        typer.Option("--san", help="Address or DNS name the gateways and admins use to reach the controller (repeat)"),
    ] = None,
    token_file: Annotated[Path | None, typer.Option(help="Also write the admin token to this file (0600)")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json")] = "text",
) -> None:
    """Create the CA and server certificate, migrate the database, and create the first admin token.

    The admin token is shown once. Running init again keeps the CA and creates no second token.

    Example: cloudgw controller init --san 203.0.113.5 --san cgw.example.org
    """
    _need_controller_packages()
    from cloudgw.controller.bootstrap import initialise

    settings = _settings(db=db, data_dir=data_dir)
    directory = Path(settings.data_dir)
    result = initialise(settings, san or [], token_file)
    ca_fingerprint, token, names = result.ca_fingerprint, result.admin_token, result.names
    if output == "json":
        print(
            json.dumps(
                {"data_dir": str(directory), "ca_fingerprint": ca_fingerprint, "admin_token": token, "names": names}
            )
        )
        return
    console.print(f"controller initialised in {directory}", highlight=False, soft_wrap=True)
    console.print(f"  certificate for:  {', '.join(names)}", highlight=False, soft_wrap=True)
    console.print(f"  CA fingerprint:   {ca_fingerprint}", highlight=False, soft_wrap=True)
    if token:
        console.print(f"  admin token:      {token}", highlight=False, soft_wrap=True)
        console.print("  (shown once: store it now; only its hash is kept)")
    else:
        console.print("  an admin token already exists; create more with `cloudgw token add`")


@app.command()
@handle_errors
def migrate(db: DbOpt = None, data_dir: DataOpt = None) -> None:
    """Apply database migrations (also done at every start).

    Example: cloudgw controller migrate --db postgresql+psycopg://cloudgw@db/cloudgw
    """
    _need_controller_packages()
    from cloudgw.controller.db.engine import current_revision, make_engine
    from cloudgw.controller.db.engine import migrate as run_migrations

    settings = _settings(db=db, data_dir=data_dir)
    engine = make_engine(settings.db)
    run_migrations(engine)
    console.print(f"database at migration {current_revision(engine)}")


@app.command()
@handle_errors
def serve(
    db: DbOpt = None,
    data_dir: DataOpt = None,
    listen: Annotated[str | None, typer.Option(help="HOST:PORT [default: 0.0.0.0:8443]")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Allow plain HTTP on a non-loopback address")] = False,
    tls_cert: Annotated[str | None, typer.Option(help="Your own server certificate (PEM)")] = None,
    tls_key: Annotated[str | None, typer.Option(help="Key of --tls-cert")] = None,
    public_url: Annotated[
        str | None,
        typer.Option(help="URL gateways use to reach this controller", envvar="CLOUDGW_PUBLIC_URL"),
    ] = None,
    listen_fd: Annotated[
        list[int] | None,
        typer.Option("--listen-fd", help="Serve on an inherited listening socket (repeatable; for supervisors)"),
    ] = None,
    print_config: Annotated[bool, typer.Option("--print-config", help="Show effective settings and exit")] = False,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error")] = None,
) -> None:
    """Serve the REST API (/api/v1, OpenAPI at /docs), the gateways' watch feed and /healthz.

    Example: cloudgw controller serve --listen 0.0.0.0:8443 --public-url https://203.0.113.5:8443
    """
    _need_controller_packages()
    from cloudgw.controller.serve import serve as run

    settings = _settings(
        db=db,
        data_dir=data_dir,
        listen=listen,
        insecure=insecure or None,
        tls_cert=tls_cert,
        tls_key=tls_key,
        public_url=public_url,
        log_level=log_level,
    )
    if print_config:
        for name, value, help_text in settings.describe():
            console.print(f"{name:14} {value:44} {help_text}", highlight=False)
        return
    logs.setup(settings.log_level)
    run(settings, fds=listen_fd or [])
