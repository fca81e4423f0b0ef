"""The agent loop against the in-memory data plane: idempotent, prunes, repairs, refuses safely."""

from ipaddress import IPv4Network

import pytest

from cloudgw.agent.agent import Agent
from cloudgw.agent.reconcile import Reconciler
from cloudgw.dataplane.fake import FakeDataplane
from cloudgw.errors import InvalidInput
from cloudgw.model.document import load_document
from tests.helpers import KEY_A, sample_document


class StaticSource:
    def __init__(self, doc):
        self.doc = doc
        self.error = None

    def poll(self):
        return self.doc


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make(doc=None):
    dataplane = FakeDataplane()
    reconciler = Reconciler(dataplane, KEY_A, resolver=lambda e: e)
    clock = Clock()
    source = StaticSource(doc or load_document(sample_document()))
    agent = Agent(source=source, reconciler=reconciler, interval=10, clock=clock)
    return agent, dataplane, clock, source


def test_first_step_applies_everything_second_changes_nothing():
    agent, dataplane, clock, _ = make()
    first = agent.step()
    assert first is not None and first.counts["adds"] > 0
    applied = len(dataplane.applied)
    clock.now += 11  # timer due: a full reconcile, which finds nothing to do
    second = agent.step()
    assert second is not None and second.actions == []
    assert len(dataplane.applied) == applied


def test_no_reconcile_before_the_timer_when_nothing_changed():
    agent, _, clock, _ = make()
    agent.step()
    clock.now += 1
    assert agent.step() is None


def test_hand_deleted_route_is_repaired_on_the_timer():
    agent, dataplane, clock, _ = make()
    agent.step()
    dst = (254, IPv4Network("192.168.1.11/32"))
    routes = dict(dataplane.state.routes)
    del routes[dst]
    from dataclasses import replace

    dataplane.state = replace(dataplane.state, routes=routes)
    clock.now += 11
    result = agent.step()
    assert [(a.op, a.key) for a in result.actions] == [("add", "192.168.1.11/32")]
    assert dst in dataplane.state.routes


def test_new_document_is_applied_immediately_and_prunes():
    agent, dataplane, _, source = make()
    agent.step()
    data = sample_document()
    data["revision"] = 4
    data["networks"][0]["remote_endpoints"] = data["networks"][0]["remote_endpoints"][:1]
    source.doc = load_document(data)
    result = agent.step()
    assert agent.applied.revision == 4
    assert {(a.op, a.kind) for a in result.actions} == {("delete", "route"), ("delete", "neighbour")}
    assert (254, IPv4Network("192.168.1.12/32")) not in dataplane.state.routes


def test_unknown_interface_is_refused_and_nothing_changes():
    dataplane = FakeDataplane(interfaces=["wan0"])  # no lan0
    reconciler = Reconciler(dataplane, KEY_A, resolver=lambda e: e)
    with pytest.raises(InvalidInput) as caught:
        reconciler.reconcile(load_document(sample_document()))
    assert caught.value.problems[0].field == "networks[0].lan_interface"
    assert dataplane.applied == []


def test_failed_apply_is_reported_and_retried_soon():
    agent, dataplane, clock, _ = make()
    dataplane.fail_on = "route"
    assert agent.step() is None
    assert "fake failure" in agent.last_error
    dataplane.fail_on = None
    clock.now += 2.5  # retried within seconds, not a whole interval
    assert agent.step() is not None
    assert agent.last_error is None


def test_remove_all_prunes_everything_owned():
    agent, dataplane, _, _ = make()
    agent.step()
    agent.reconciler.remove_all()
    state = dataplane.state
    assert not state.routes and not state.neighbours and not state.peers and not state.links and state.nft is None


class CountingDataplane(FakeDataplane):
    def __init__(self):
        super().__init__()
        self.observed = 0

    def observe(self, sysctl_keys=()):
        self.observed += 1
        return super().observe(sysctl_keys)


def test_a_new_document_takes_the_fast_path_and_the_timer_reads_the_kernel():
    dataplane = CountingDataplane()
    reconciler = Reconciler(dataplane, KEY_A, resolver=lambda e: e)
    reconciler.reconcile(load_document(sample_document()))
    assert dataplane.observed == 1
    data = sample_document()
    data["networks"][0]["remote_endpoints"].append({"ip": "192.168.1.13", "gateway": "gw-b"})
    fast = reconciler.reconcile(load_document(data), full=False)
    assert dataplane.observed == 1  # no kernel read
    assert {(a.op, a.kind) for a in fast.actions} == {("add", "route"), ("add", "neighbour")}
    assert reconciler.reconcile(load_document(data), full=True).actions == []
    assert dataplane.observed == 2


def test_after_a_failure_the_fast_path_reads_the_kernel_again():
    dataplane = CountingDataplane()
    reconciler = Reconciler(dataplane, KEY_A, resolver=lambda e: e)
    reconciler.reconcile(load_document(sample_document()))
    data = sample_document()
    data["networks"][0]["remote_endpoints"].append({"ip": "192.168.1.13", "gateway": "gw-b"})
    dataplane.fail_on = "route"
    with pytest.raises(Exception, match="fake failure"):
        reconciler.reconcile(load_document(data), full=False)
    dataplane.fail_on = None
    before = dataplane.observed
    reconciler.reconcile(load_document(data), full=False)
    assert dataplane.observed == before + 1


def test_agent_uses_the_fast_path_for_changes_and_the_full_one_on_the_timer():
    agent, _, clock, source = make()
    counting = CountingDataplane()
    agent.reconciler.dataplane = counting
    agent.step()
    data = sample_document()
    data["revision"] = 9
    source.doc = load_document(data)
    clock.now += 1
    agent.step()
    assert counting.observed == 1
    clock.now += 11
    agent.step()
    assert counting.observed == 2


def test_learned_endpoints_survive_an_agent_restart(tmp_path):
    """A restarted agent must announce what it knew, not withdraw it (the mapping would flap)."""
    from ipaddress import IPv4Address

    from cloudgw.agent.learn import EndpointTable
    from cloudgw.agent.status import read_json

    agent, _dataplane, clock, source = make()
    agent.endpoints_path = tmp_path / "endpoints.json"
    agent.table.seen("net1", IPv4Address("192.168.1.3"), "02:00:00:00:00:03", "arp", now=5000)
    agent.step()
    assert (tmp_path / "endpoints.json").stat().st_mode & 0o777 == 0o600
    restarted = EndpointTable()
    assert restarted.restore(read_json(tmp_path / "endpoints.json"), now=5010, max_age=300) == 1
    second = Agent(source=source, reconciler=agent.reconciler, interval=10, clock=clock, table=restarted)
    second.step()
    assert second.endpoints_by_network() == agent.endpoints_by_network()
    assert [e["ip"] for e in second.endpoints_by_network()["net1"]] == ["192.168.1.3"]


class SilentPeers(FakeDataplane):
    """Reports WireGuard statistics: `shaken` peers have had a handshake, the others not."""

    def __init__(self):
        super().__init__()
        self.shaken: set[str] = set()

    def peer_stats(self):
        from cloudgw.dataplane.wireguard import PeerStats

        return [
            PeerStats(peer.public_key, peer.endpoint, last_handshake=1.0 if peer.public_key in self.shaken else 0.0)
            for peer in self.state.peers.values()
        ]


@pytest.mark.parametrize("shaken", [False, True], ids=["silent-peer-nudged", "answered-peer-left-alone"])
def test_a_new_peer_without_a_handshake_is_recreated_once(shaken):
    dataplane = SilentPeers()
    clock = Clock()
    agent = Agent(
        source=StaticSource(load_document(sample_document())),
        reconciler=Reconciler(dataplane, KEY_A, resolver=lambda e: e),
        interval=100,
        clock=clock,
    )
    agent.step()
    key = next(iter(dataplane.state.peers))[1]
    if shaken:
        dataplane.shaken.add(key)
    applied = len(dataplane.applied)
    clock.now += 1.0
    agent.step()
    assert len(dataplane.applied) == applied  # not yet: the first initiation may still be answered
    clock.now += 1.0
    agent.step()
    nudged = [str(a) for a in dataplane.applied[applied:]]
    assert nudged == ([] if shaken else [f"delete peer {key}", f"add peer {key}"])
    assert key in {k for _link, k in dataplane.state.peers}  # the peer is still there afterwards
    clock.now += 5.0
    agent.step()
    assert len(dataplane.applied) == applied + len(nudged)  # once only
