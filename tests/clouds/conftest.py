from __future__ import annotations

import pytest

from tests.clouds.moto_strict import CREDENTIALS, StrictAws


@pytest.fixture(scope="session")
def strict_aws(tmp_path_factory):
    aws = StrictAws(tmp_path_factory.mktemp("moto"))
    yield aws
    aws.stop()


@pytest.fixture
def aws(strict_aws, monkeypatch):
    """A fresh account; the controller-side credentials in boto3's standard place (the environment)."""
    strict_aws.reset()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    return strict_aws
