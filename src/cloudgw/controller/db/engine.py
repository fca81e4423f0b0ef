"""Engine and migrations. SQLite by default; PostgreSQL by URL (postgresql+psycopg://...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from cloudgw.errors import InvalidInput, Problem
from cloudgw.files import tighten

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidInput(
            [
                Problem(
                    "db",
                    f"'{url}' is not a database URL",
                    "use sqlite:////var/lib/cloudgw/controller.db or postgresql+psycopg://user@host/dbname",
                )
            ],
            what="controller settings",
        ) from None
    kwargs: dict[str, Any] = {"future": True}
    database: str | None = None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            database = parsed.database
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        # one connection per request thread (anyio's pool has 40), kept: opening one runs the
        # pragmas below, which showed up at 1,000 gateways when overflow connections came and went
        kwargs["pool_size"] = 40
        kwargs["max_overflow"] = 10
    elif parsed.get_backend_name() == "postgresql":
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 20
        kwargs["pool_pre_ping"] = True
    else:
        raise InvalidInput(
            [Problem("db", f"unsupported database '{parsed.get_backend_name()}'", "use sqlite or postgresql+psycopg")],
            what="controller settings",
        )
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            if database is not None:  # the database holds token hashes and the audit: owner only
                for suffix in ("", "-wal", "-shm"):
                    tighten(database + suffix, 0o600)

    return engine


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Apply every migration up to `revision` (idempotent)."""
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
