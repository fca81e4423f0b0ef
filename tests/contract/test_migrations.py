"""Migrations build the schema from nothing, and the models match the migrated schema."""

from __future__ import annotations

import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from cloudgw.controller.db.engine import current_revision, make_engine, migrate
from cloudgw.controller.db.models import Base
from tests import pg
from tests.helpers import run


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/empty.db"
    return pg.create_database(request.getfixturevalue("postgres"))


def test_migrations_from_empty_database_match_the_models(empty_db):
    engine = make_engine(empty_db)
    assert inspect(engine).get_table_names() == []
    migrate(engine)
    assert current_revision(engine) == "0009"
    with engine.connect() as connection:
        differences = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
        )
    assert differences == []
    migrate(engine)  # idempotent
    engine.dispose()


def test_migrate_command(tmp_path):
    result = run([sys.executable, "-m", "cloudgw", "controller", "migrate", "--data-dir", str(tmp_path)])
    assert "database at migration 0009" in result.stdout
    assert (tmp_path / "controller.db").exists()


def test_bad_database_url_is_refused_naming_the_setting(tmp_path):
    result = run([sys.executable, "-m", "cloudgw", "controller", "migrate", "--db", "mysql://x"], check=False)
    assert result.returncode == 78 and "db:" in result.stderr and "postgresql+psycopg" in result.stderr
