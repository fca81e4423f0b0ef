from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests import pg
from tests.controllers import RunningController, start_controller


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """Base URL of a PostgreSQL server (started for the session unless CLOUDGW_TEST_PG_URL is set)."""
    if os.environ.get("CLOUDGW_TEST_PG_URL"):
        yield os.environ["CLOUDGW_TEST_PG_URL"].rstrip("/")
        return
    reason = pg.available()
    if reason:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must test PostgreSQL: {reason}")
        pytest.skip(reason)
    server = pg.Postgres().start()
    try:
        yield server.base_url
    finally:
        server.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database URL of each kind; every contract test runs against both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db')}/controller.db"
    base = request.getfixturevalue("postgres")
    return pg.create_database(base)


@pytest.fixture(scope="session")
def controller(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningController]:
    running = start_controller(tmp_path_factory.mktemp("controller"), backend)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def api(controller: RunningController):
    with controller.client() as client:
        yield client


@pytest.fixture
def uid() -> str:
    """A suffix that keeps each test's resources apart on the shared controller."""
    return uuid.uuid4().hex[:8]
