"""Property-based fuzzing of every API operation from the controller's own OpenAPI description
(schemathesis + hypothesis), as admin, read-only, gateway and anonymous, on SQLite and PostgreSQL:
whatever is sent, the controller never answers 5xx. Each run counts its requests and writes the
figure to test-artifacts/fuzz-<database>.json (docs/security.md quotes a run)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.contract.world import join, make_world

EXAMPLES = int(os.environ.get("CLOUDGW_FUZZ_EXAMPLES", "30"))
COUNTS: Counter[str] = Counter()
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def fuzz_setup(controller):
    """A small world, and one credential of each role."""
    with controller.client() as api:
        world = make_world(api, "fuzz", gateways=True, connect=True)
        credential, _ = join(api, controller, world.gw_a)
        readonly = api.create("tokens", {"name": "fuzz-reader", "role": "readonly"})["token"]
    session = requests.Session()
    session.verify = controller.ca
    return {
        "session": session,
        "roles": {"admin": controller.admin_token, "readonly": readonly, "gateway": credential, "anonymous": None},
    }


def operations(controller):
    spec = requests.get(f"{controller.url}/openapi.json", verify=controller.ca, timeout=10).json()
    schema = schemathesis.openapi.from_dict(spec)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.fixture(scope="module", autouse=True)
def report(backend):
    COUNTS.clear()
    yield
    ARTIFACTS.mkdir(exist_ok=True)
    kind = backend.split(":")[0].split("+")[0]
    (ARTIFACTS / f"fuzz-{kind}.json").write_text(json.dumps(dict(COUNTS), indent=1))
    total = sum(v for k, v in COUNTS.items() if not k.startswith("status"))
    print(f"\nfuzz on {kind}: {total} requests, {dict(COUNTS)}")


def test_no_input_makes_the_controller_fail(controller, fuzz_setup):
    """Every operation, EXAMPLES generated requests each (hypothesis, from the OpenAPI schema), each
    sent once per role: admin, read-only, gateway and anonymous."""
    failures = []
    for operation in operations(controller):
        if operation.path == "/api/v1/events":
            continue  # a server-sent event stream never ends; its auth is covered by the contract tests

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def send(case):
            if case.path == "/api/v1/agent/document":
                # a long-poll answered at once; a stream never ends (tests/contract/test_stream.py)
                case.query = {**(case.query or {}), "wait": 0, "stream": "false"}
            for role, token in fuzz_setup["roles"].items():
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = case.call(
                    base_url=controller.url,
                    session=fuzz_setup["session"],
                    headers=headers,
                    timeout=30,
                    verify=controller.ca,
                )
                COUNTS[role] += 1
                COUNTS[f"status {response.status_code // 100}xx"] += 1
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} as {role}: {response.text[:300]}")

        send()
    assert not failures, failures[:10]
