"""HA pairs, pure parts: the signed hello, the decision rule, documents and kernel objects by role."""

from __future__ import annotations

import json
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest

from cloudgw.agent.ha import Hello, PairState, decode_hello, encode_hello, pair_key
from cloudgw.agent.keys import generate_private_key, public_key_of
from cloudgw.agent.pair import Pair, RoleReply, Unreachable
from cloudgw.dataplane.render import peer_allowed_ips, render
from cloudgw.mapping.documents import render_document
from cloudgw.model.addr import AddressRange
from cloudgw.model.document import load_document
from cloudgw.model.topology import Announcement, Connection, Gateway, Network, Pool, Site, Topology
from tests.helpers import KEY_A, KEY_B, KEY_C, sample_document

A_PRIV, B_PRIV = generate_private_key(), generate_private_key()
A_PUB, B_PUB = public_key_of(A_PRIV), public_key_of(B_PRIV)
NOW = 1_800_000_000.0


def hello(gateway="gw-a2", role="standby", priority=100, epoch=0, healthy=1, boot=7, seq=1, sent=NOW):
    return Hello(gateway, role, priority, epoch, healthy, boot, seq, sent)


# the signed hello -----------------------------------------------------------------------------------
def test_both_gateways_derive_the_same_key_and_nobody_else_does():
    mine = pair_key(A_PRIV, B_PUB, ("gw-a", "gw-a2"))
    theirs = pair_key(B_PRIV, A_PUB, ("gw-a2", "gw-a"))
    assert mine == theirs and len(mine) == 32
    stranger = pair_key(generate_private_key(), B_PUB, ("gw-a", "gw-a2"))
    assert stranger != mine


def test_hello_round_trip_and_forgeries_are_dropped():
    key = pair_key(A_PRIV, B_PUB, ("gw-a", "gw-a2"))
    data = encode_hello(hello(), key)
    assert decode_hello(data, {"gw-a2": key}, NOW) == hello()
    assert decode_hello(data.replace(b'"standby"', b'"active"'), {"gw-a2": key}, NOW) is None  # tampered
    assert decode_hello(data, {"gw-a2": b"x" * 32}, NOW) is None  # signed with another key
    assert decode_hello(data, {"other": key}, NOW) is None  # unknown sender
    assert decode_hello(data, {"gw-a2": key}, NOW + 3600) is None  # an hour old: a replay
    assert decode_hello(b"\xff" * 2000, {"gw-a2": key}, NOW) is None
    assert decode_hello(b"{not json}.00", {"gw-a2": key}, NOW) is None


def test_replays_within_the_window_do_not_keep_a_dead_partner_alive():
    state = PairState("gw-a", 200, {"gw-a2": 100}, dead_s=1.0, failback=False, now=0.0)
    assert state.hear(hello(seq=5, sent=NOW + 5), "lan", 0.0)
    assert not state.hear(hello(seq=4, sent=NOW + 4), "lan", 0.5)  # older sequence
    assert not state.hear(hello(boot=1, seq=99, sent=NOW + 3), "wan", 0.6)  # an earlier boot's hello
    assert state.hear(hello(seq=5, sent=NOW + 5), "wan", 0.7)  # the same hello by the other path
    assert state.heard["gw-a2"].at == 0.0 and state.heard["gw-a2"].paths == {"lan", "wan"}
    assert state.alive(1.2) == []


# the decision rule ---------------------------------------------------------------------------------
def pair(name="gw-a", priority=200, now=0.0, **kwargs):
    return PairState(
        name, priority, {"gw-a2" if name == "gw-a" else "gw-a": 100}, 1.0, kwargs.get("failback", False), now
    )


def test_a_new_gateway_listens_before_it_claims():
    state = pair()
    assert state.decide(0.5, healthy=1, peers=1) is None
    want = state.decide(1.1, healthy=1, peers=1)
    assert want is not None and want.role == "active" and "no hello from 'gw-a2'" in want.reason


def test_a_standby_stays_while_the_active_partner_is_heard():
    state = pair()
    state.hear(hello(role="active", epoch=3), "lan", 1.0)
    assert state.decide(1.5, healthy=1, peers=1) is None
    assert state.decide(2.05, healthy=1, peers=1).role == "active"  # silent for more than dead_s
    assert state.seen_epoch == 3 and state.next_epoch() == 4


def test_of_two_standbys_only_the_higher_priority_claims():
    low = PairState("gw-a2", 100, {"gw-a": 200}, 1.0, False, 0.0)
    low.hear(hello(gateway="gw-a", priority=200, role="standby"), "lan", 1.0)
    assert low.decide(1.5, 1, 1) is None
    high = pair()
    high.hear(hello(priority=100, role="standby"), "lan", 1.0)
    assert high.decide(1.5, 1, 1).role == "active"


def test_a_partner_with_no_live_tunnel_is_replaced_by_a_healthy_standby():
    state = pair(priority=100)
    state.hear(hello(role="active", priority=200, healthy=0), "lan", 1.0)
    want = state.decide(1.2, healthy=2, peers=2)
    assert want is not None and want.role == "active" and "no live tunnel" in want.reason
    state2 = pair(priority=100)
    state2.hear(hello(role="active", priority=200, healthy=0), "lan", 1.0)
    assert state2.decide(1.2, healthy=0, peers=2) is None  # neither has a tunnel: no reason to move


def test_two_actives_after_a_partition_the_lower_rank_steps_down():
    state = pair(priority=200)
    state.role, state.epoch = "active", 4
    state.hear(hello(role="active", epoch=5), "wan", 1.0)
    want = state.decide(1.1, 1, 1)
    assert want is not None and want.role == "standby" and "epoch 5" in want.reason
    other = pair(priority=200)
    other.role, other.epoch = "active", 6
    other.hear(hello(role="active", epoch=5), "wan", 1.0)
    assert other.decide(1.1, 1, 1) is None


def test_failback_only_when_asked_and_after_the_hold_time():
    state = pair(name="gw-a", priority=100)
    state.partners = {"gw-a2": 200}
    state.role = "active"
    for t in (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0):
        state.hear(hello(priority=200, seq=int(t * 10), sent=NOW + t), "lan", t)
    assert state.decide(4.0, 1, 1) is None  # failback not configured
    state.failback = True
    state.hear(hello(priority=200, seq=41, sent=NOW + 4.1), "lan", 4.1)
    assert state.decide(4.1, 1, 1).role == "standby"


# the agent's pair: controller answers and the overlay --------------------------------------------
class FakeController:
    def __init__(self, reply=None, down=False):
        self.reply, self.down, self.calls = reply, down, []

    def request_role(self, role, epoch, reason):
        self.calls.append((role, epoch, reason))
        if self.down:
            raise Unreachable("down")
        return self.reply


def pair_doc(role="standby"):
    data = sample_document()
    data["gateway"].update(
        {
            "priority": 200,
            "role": role,
            "partners": [{"name": "gw-a2", "public_key": B_PUB, "lan_addresses": ["192.168.1.252"]}],
        }
    )
    data["peers"].append(
        {"name": "gw-b2", "site": "b", "public_key": KEY_C, "role": "standby", "lan_addresses": ["192.168.1.251"]}
    )
    return load_document(data)


def make_pair(controller):
    changes = []
    agent_pair = Pair(
        private_key=A_PRIV, controller=controller, health=lambda: (1, 2), on_change=lambda: changes.append(1)
    )
    agent_pair._open = lambda port: None  # no socket in a unit test
    agent_pair.configure(pair_doc())
    return agent_pair, changes


def test_a_claim_refused_by_the_controller_stays_standby():
    reply = RoleReply(False, "standby", "gw-a2", 9, "'gw-a2' holds the site's active lease (epoch 9)")
    agent_pair, changes = make_pair(FakeController(reply))
    agent_pair._act(type("W", (), {"role": "active", "reason": "no hello"})())
    assert agent_pair.role == "standby" and agent_pair.state.next_epoch() == 10 and "holds" in agent_pair.reason
    assert changes  # the refusal is reported (status file)


def test_with_the_controller_unreachable_the_standby_decides_alone():
    agent_pair, _changes = make_pair(FakeController(down=True))
    agent_pair._act(type("W", (), {"role": "active", "reason": "no hello from 'gw-a2'"})())
    assert agent_pair.role == "active" and "decided alone" in agent_pair.reason and agent_pair.state.epoch == 1
    assert agent_pair.changes[-1]["role"] == "active"


def test_a_renewal_refused_steps_down_and_unreachable_keeps_the_role():
    agent_pair, _ = make_pair(FakeController(RoleReply(True, "active", "gw-a", 3)))
    agent_pair._act(type("W", (), {"role": "active", "reason": "x"})())
    assert agent_pair.role == "active" and agent_pair.state.epoch == 3
    agent_pair.controller = FakeController(down=True)
    agent_pair._renew()
    assert agent_pair.role == "active"
    agent_pair.controller = FakeController(RoleReply(False, "standby", "gw-a2", 4, "'gw-a2' holds it"))
    agent_pair._renew()
    assert agent_pair.role == "standby" and "gw-a2" in agent_pair.reason


def test_overlay_sets_the_own_role_and_moves_a_peer_site_on_a_newer_notice():
    agent_pair, _ = make_pair(None)
    doc = pair_doc()
    assert agent_pair.overlay(doc).gateway.role == "standby"
    assert agent_pair.overlay(doc) is agent_pair.overlay(doc)  # cached until something changes
    assert peer_allowed_ips(agent_pair.overlay(doc))["gw-b2"] == [IPv4Network("192.168.1.251/32")]
    agent_pair._from_tunnel(b'{"active": "gw-b2", "epoch": 1}', "192.168.1.251", 51821)
    moved = agent_pair.overlay(doc)
    allowed = peer_allowed_ips(moved)
    assert IPv4Network("192.168.1.11/32") in allowed["gw-b2"] and allowed["gw-b"] == [IPv4Network("192.168.1.253/32")]
    # a notice from another address, naming another gateway, or not newer is ignored
    agent_pair._from_tunnel(b'{"active": "gw-b", "epoch": 1}', "192.168.1.251", 51821)
    agent_pair._from_tunnel(b'{"active": "gw-b", "epoch": 9}', "192.168.1.99", 51821)
    assert agent_pair.overrides == {"b": ("gw-b2", 1)}
    # once the controller's document says as much, the override goes
    newer = doc.model_copy(update={"peers": [p.model_copy(update={"epoch": 1}) for p in doc.peers]})
    agent_pair.overlay(newer)
    assert agent_pair.overrides == {}


# kernel objects by role ------------------------------------------------------------------------------
def test_a_standby_keeps_routes_and_peers_but_answers_no_arp():
    active = render(pair_doc("active"), KEY_A)
    standby = render(pair_doc("standby"), KEY_A)
    assert active.neighbours and not standby.neighbours
    assert active.routes == standby.routes and active.peers == standby.peers


def test_only_the_active_peer_of_a_pair_carries_its_site_addresses():
    allowed = peer_allowed_ips(pair_doc())
    assert IPv4Network("192.168.1.12/30") in allowed["gw-b"]
    assert allowed["gw-b2"] == [IPv4Network("192.168.1.251/32")]


# documents from the topology ------------------------------------------------------------------------
def pair_topology(role_a2: str | None = None) -> Topology:
    topo = Topology()
    for site in ("a", "b"):
        topo.sites[site] = Site(site)
    topo.networks["n"] = Network("n", IPv4Network("192.168.1.0/24"))
    topo.pools["pa"] = Pool("pa", "n", "a", AddressRange.parse("192.168.1.1-192.168.1.10"))
    topo.pools["pb"] = Pool("pb", "n", "b", AddressRange.parse("192.168.1.11-192.168.1.20"))
    topo.connections["c"] = Connection("c", "n", "a", "b")
    lan = IPv4Address
    topo.gateways["gw-a"] = Gateway(
        "gw-a", "a", "203.0.113.10:51820", KEY_A, lan_addresses=(lan("192.168.1.254"),), priority=200
    )
    topo.gateways["gw-a2"] = Gateway(
        "gw-a2", "a", "203.0.113.11:51820", KEY_C, lan_addresses=(lan("192.168.1.252"),), role=role_a2, role_epoch=2
    )
    topo.gateways["gw-b"] = Gateway("gw-b", "b", "203.0.113.20:51820", KEY_B, lan_addresses=(lan("192.168.1.253"),))
    for gateway in ("gw-a", "gw-a2"):  # both of the pair see the same VM on their LAN
        ip = lan("192.168.1.3")
        topo.announcements[("n", ip, gateway)] = Announcement("n", ip, gateway)
    return topo


def test_documents_name_the_partner_and_the_peer_pair_with_its_active_one():
    topo = pair_topology()
    doc_b = render_document(topo, "gw-b", 1)
    roles = {p.name: p.role for p in doc_b.peers}
    assert roles == {"gw-a": "active", "gw-a2": "standby"}  # before any role is recorded: the priority
    assert [(e.ip, e.gateway) for e in doc_b.networks[0].remote_endpoints] == [(IPv4Address("192.168.1.3"), "gw-a")]
    doc_a = render_document(topo, "gw-a", 1)
    assert [p.name for p in doc_a.gateway.partners] == ["gw-a2"] and doc_a.gateway.role == "active"
    assert doc_a.gateway.partners[0].ha_port == 51821
    recorded = pair_topology(role_a2="active")
    doc_b = render_document(recorded, "gw-b", 2)
    assert {p.name: (p.role, p.epoch) for p in doc_b.peers} == {"gw-a": ("standby", 2), "gw-a2": ("active", 2)}
    assert doc_b.networks[0].remote_endpoints[0].gateway == "gw-a2"
    load_document(doc_b.model_dump(mode="json"))  # valid as the agent will check it


def test_the_nft_filter_opens_the_hello_port_to_the_partner_only():
    ruleset = render(pair_doc(), KEY_A).nft
    assert ("input", "wan-ha") not in ruleset.rule_ids  # the partner has no literal endpoint in this document
    data = pair_doc().model_dump(mode="json")
    data["gateway"]["partners"][0]["endpoint"] = "203.0.113.11:51820"
    ruleset = render(load_document(data), KEY_A).nft
    assert ("input", "wan-ha") in ruleset.rule_ids
    text = json.dumps(ruleset.commands)
    assert "203.0.113.11" in text and "51821" in text


@pytest.mark.parametrize("dead_ms", [100, 599])
def test_timing_refuses_a_dead_time_under_three_hellos(dead_ms):
    from pydantic import ValidationError

    from cloudgw.model.topologyfile import HaSpec

    with pytest.raises(ValidationError):
        HaSpec(interval_ms=200, dead_ms=dead_ms)


def test_replace_keeps_gateways_positional_fields():
    gateway = Gateway("g", "s", priority=150)
    assert replace(gateway, role="active").priority == 150


def vip_doc(role):
    data = pair_doc(role).model_dump(mode="json")
    data["gateway"]["virtual_addresses"] = ["192.168.1.250"]
    return load_document(data)


def test_the_active_gateway_holds_the_virtual_address_and_the_standby_does_not():
    from ipaddress import IPv4Interface

    from cloudgw.dataplane.kernelstate import LanAddress

    assert render(vip_doc("active"), KEY_A).addresses == {LanAddress(IPv4Interface("192.168.1.250/24"), "lan0")}
    assert render(vip_doc("standby"), KEY_A).addresses == frozenset()


@pytest.mark.parametrize(
    ("address", "words"), [("10.0.0.1", "none of this gateway's networks"), ("192.168.1.5", "pool")]
)
def test_a_virtual_address_outside_the_network_or_in_a_pool_is_refused(address, words):
    from cloudgw.errors import InvalidInput

    data = pair_doc().model_dump(mode="json")
    data["gateway"]["virtual_addresses"] = [address]
    with pytest.raises(InvalidInput) as caught:
        load_document(data)
    assert (
        caught.value.problems[0].field == "gateway.virtual_addresses[0]" and words in caught.value.problems[0].message
    )


def test_rules_keep_virtual_addresses_out_of_pools_and_gateways():
    from cloudgw.model import rules
    from cloudgw.model.topology import HaTiming

    topo = pair_topology()
    site = replace(topo.sites["a"], ha=HaTiming(addresses=(IPv4Address("192.168.1.5"), IPv4Address("192.168.1.254"))))
    problems = rules.check_site(topo, site, old_name="a")
    assert [p.field for p in problems] == ["ha.addresses[0]", "ha.addresses[1]"]
    topo.sites["a"] = replace(site, ha=HaTiming(addresses=(IPv4Address("192.168.1.30"),)))
    pool = Pool("pc", "n", "a", AddressRange.parse("192.168.1.21-192.168.1.40"))
    assert [p.field for p in rules.check_pool(topo, pool)] == ["range"]
    # documents carry it only where it fits
    assert render_document(topo, "gw-a", 1).gateway.virtual_addresses == [IPv4Address("192.168.1.30")]


def test_a_standby_that_reaches_no_peer_never_claims_and_never_blocks_a_healthy_one():
    state = pair()
    assert state.decide(1.5, healthy=0, peers=2) is None  # serving nobody: no claim
    low = PairState("gw-a2", 100, {"gw-a": 200}, 1.0, False, 0.0)
    low.hear(hello(gateway="gw-a", priority=200, role="standby", healthy=0), "lan", 1.0)
    want = low.decide(1.5, healthy=2, peers=2)  # the better one cannot reach the peers: this one claims
    assert want is not None and want.role == "active"


class Capture:
    def __init__(self):
        self.sent = []

    def sendto(self, data, address):
        self.sent.append((data, address))


def test_probes_through_the_tunnel_answer_with_echoes_and_measure_reachability():
    clock = [100.0]
    agent_pair = Pair(private_key=A_PRIV, controller=None, health=lambda: (9, 9), on_change=lambda: None,
                      clock=lambda: clock[0])  # fmt: skip
    agent_pair._open = lambda port: None
    agent_pair.configure(pair_doc())
    agent_pair._sock = Capture()
    assert agent_pair.tunnel_health() is None and agent_pair._healthy() == (9, 9)  # no echo yet: the sessions
    agent_pair._send_probes()
    assert sorted(address for _, address in agent_pair._sock.sent) == [
        ("192.168.1.251", 51821),
        ("192.168.1.253", 51821),
    ]
    agent_pair._from_tunnel(b'{"probe": 7}', "192.168.1.253", 40000)  # a peer probes us: we echo
    assert agent_pair._sock.sent[-1] == (b'{"echo": 7}', ("192.168.1.253", 40000))
    agent_pair._from_tunnel(b'{"probe": 8}', "10.9.9.9", 40000)  # not a peer's address: no answer
    assert agent_pair._sock.sent[-1][0] == b'{"echo": 7}'
    agent_pair._from_tunnel(b'{"echo": 1}', "192.168.1.253", 51821)
    agent_pair._from_tunnel(b'{"echo": 1}', "192.168.1.251", 51821)
    assert agent_pair.tunnel_health() == (2, 2)
    clock[0] += 2.0  # the WAN is gone: no echo within the window
    assert agent_pair.tunnel_health() == (0, 2) and agent_pair._healthy() == (0, 2)
