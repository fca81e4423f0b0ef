"""The security suite runs on both databases, with the contract tests' controllers and fixtures."""

from tests.contract.conftest import api, backend, controller, postgres, uid  # noqa: F401
