"""The CLI against a real controller over TLS on 127.0.0.1 (the production app in a thread)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cloudgw.cli.main import app
from tests.controllers import RunningController, start_controller


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def yaml(self) -> Any:
        return yaml.safe_load(self.out)


@pytest.fixture(scope="session")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningController]:
    data = tmp_path_factory.mktemp("cli-controller")
    running = start_controller(data, f"sqlite:///{data}/controller.db")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def cli(controller: RunningController, tmp_path):
    """cli("site", "list") -> Result, with the controller in the environment (as an admin would)."""
    env = {
        "CLOUDGW_URL": controller.url,
        "CLOUDGW_TOKEN": controller.admin_token,
        "CLOUDGW_CA": controller.ca,
        "CLOUDGW_CONFIG": str(tmp_path / "config.yaml"),
        "CLOUDGW_LAB": "cgwnolab",
        "COLUMNS": "200",
    }

    def run(*args: str, input: str | None = None, env_overrides: dict[str, str | None] | None = None) -> Result:
        result = CliRunner().invoke(app, list(args), input=input, env={**env, **(env_overrides or {})})
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Result(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:6]
