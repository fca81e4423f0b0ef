"""The endpoint fast path must agree exactly with a full render and plan."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudgw.dataplane.delta import endpoint_delta
from cloudgw.dataplane.plan import plan
from cloudgw.dataplane.render import render
from cloudgw.model.document import load_document
from tests.helpers import KEY_A, sample_document

REMOTE = [f"192.168.1.{i}" for i in range(11, 21)]


def doc_with(endpoints, **overrides):
    data = sample_document(**overrides)
    data["networks"][0]["remote_endpoints"] = [{"ip": ip, "gateway": "gw-b"} for ip in endpoints]
    return load_document(data)


@settings(max_examples=60, deadline=None)
@given(before=st.sets(st.sampled_from(REMOTE)), after=st.sets(st.sampled_from(REMOTE)))
def test_delta_equals_full_render_and_plan(before, after):
    old, new = doc_with(sorted(before)), doc_with(sorted(after))
    old_state = render(old, KEY_A)
    actions, state = endpoint_delta(old, new, old_state)
    assert state == render(new, KEY_A)
    full = plan(old_state, render(new, KEY_A))
    assert sorted((a.op, a.kind, a.key) for a in actions) == sorted((a.op, a.kind, a.key) for a in full)
    kinds = [a.kind for a in actions if a.op == "delete"]
    assert kinds == sorted(kinds, key=lambda k: k != "route")  # routes go before neighbours


@pytest.mark.parametrize(
    "change",
    [
        {"gateway.wan_interface": "wan9"},
        {"networks.0.pools.0.range": "192.168.1.1-192.168.1.9"},
        {"peers.0.endpoint": "203.0.113.99:51820"},
    ],
    ids=["wan", "pool", "peer"],
)
def test_anything_else_changing_takes_the_full_path(change):
    old = doc_with(REMOTE[:2])
    new = doc_with(REMOTE[:3], **change)
    assert endpoint_delta(old, new, render(old, KEY_A)) is None


def test_revision_alone_is_an_empty_delta():
    old = doc_with(REMOTE[:2], revision=3)
    new = doc_with(REMOTE[:2], revision=4)
    actions, state = endpoint_delta(old, new, render(old, KEY_A))
    assert actions == [] and state == render(new, KEY_A)
