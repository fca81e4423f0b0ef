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


@pytest.fixture(scope="session")
def fake_openstack_server(tmp_path_factory):
    from tests.clouds.openstack_fake import FakeOpenStack

    fake = FakeOpenStack(tmp_path_factory.mktemp("openstack"))
    yield fake
    fake.stop()


@pytest.fixture
def openstack_cloud(fake_openstack_server, monkeypatch):
    """An empty fake OpenStack; the controller-side clouds.yaml in openstacksdk's standard place."""
    fake_openstack_server.reset()
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(fake_openstack_server.clouds_yaml))
    return fake_openstack_server
